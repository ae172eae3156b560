"""The package version, in the lowest layer so any module may report it."""

VERSION = "0.1.0"
