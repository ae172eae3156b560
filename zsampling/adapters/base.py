"""Deprecated import path, kept until zsampling 0.3.0 (CHANGELOG.md).

``ModelAdapter`` is in `zsampling.api` (code: `zsampling.core.model`).
"""

from zsampling.core.moved import moved

__getattr__ = moved(__name__, "zsampling.core.model")
