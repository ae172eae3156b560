"""Deprecated import path, kept until zsampling 0.3.0 (CHANGELOG.md).

Moved to `zsampling.integrations.kdiffusion`.
"""

from zsampling.core.moved import moved

__getattr__ = moved(__name__, "zsampling.integrations.kdiffusion")
