"""Deprecated import path, kept until zsampling 0.3.0 (CHANGELOG.md).

``ReflectiveSampler`` is in `zsampling.api` (code: `zsampling.core.sampler`).
"""

from zsampling.core.moved import moved

__getattr__ = moved(__name__, "zsampling.core.sampler")
