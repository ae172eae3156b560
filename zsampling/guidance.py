"""Deprecated import path, kept until zsampling 0.3.0 (CHANGELOG.md).

The guider contract is in `zsampling.api` (code: `zsampling.core.guidance`, `zsampling.core.cfg`).
"""

from zsampling.core.moved import moved

__getattr__ = moved(__name__, "zsampling.api", "zsampling.core.guidance", "zsampling.core.cfg")
