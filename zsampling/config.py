"""Deprecated import path, kept until zsampling 0.3.0 (CHANGELOG.md).

Moved to `zsampling.runs.config`.
"""

from zsampling.core.moved import moved

__getattr__ = moved(__name__, "zsampling.api", "zsampling.runs.config", "zsampling.runs.issues")
