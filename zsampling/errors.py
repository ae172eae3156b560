"""Deprecated import path, kept until zsampling 0.3.0 (CHANGELOG.md).

The error types are in `zsampling.api` (code: `zsampling.core.errors`).
"""

from zsampling.core.moved import moved

__getattr__ = moved(__name__, "zsampling.api", "zsampling.core.errors")
