"""Deprecated import path, kept until zsampling 0.3.0 (CHANGELOG.md).

``Process`` and ``TimestepTable`` are in `zsampling.api` (code: `zsampling.core.levels`).
"""

from zsampling.core.moved import moved

__getattr__ = moved(__name__, "zsampling.api", "zsampling.core.levels")
