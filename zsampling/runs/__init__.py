"""Runs: a validated config (`config`) executed item by item (`run`) into outputs that are written
atomically with their settings and a manifest (`outputs`, `fingerprint`), optionally split across
processes (`distributed`)."""
