"""Deprecated import path, kept until zsampling 0.3.0 (CHANGELOG.md).

Moved to `zsampling.runs.outputs`.
"""

from zsampling.core.moved import moved

__getattr__ = moved(__name__, "zsampling.runs.outputs", "zsampling.core.files")
