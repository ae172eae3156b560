"""Deprecated import path, kept until zsampling 0.3.0 (CHANGELOG.md).

Solver types are in `zsampling.api` (code: `zsampling.core.solvers`).
"""

from zsampling.core.moved import moved

__getattr__ = moved(__name__, "zsampling.api", "zsampling.core.solvers")
