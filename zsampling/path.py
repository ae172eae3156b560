"""Deprecated import path, kept until zsampling 0.3.0 (CHANGELOG.md).

``SamplingPath`` is in `zsampling.api` (code: `zsampling.core.path`).
"""

from zsampling.core.moved import moved

__getattr__ = moved(__name__, "zsampling.api", "zsampling.core.path")
