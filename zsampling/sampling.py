"""Deprecated import path, kept until zsampling 0.3.0 (CHANGELOG.md).

``sample()`` is in `zsampling.api` (code: `zsampling.core.sampling`).
"""

from zsampling.core.moved import moved

__getattr__ = moved(__name__, "zsampling.api", "zsampling.core.sampling")
