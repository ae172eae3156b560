"""Solvers beyond DDIM and DPM-Solver++(2M): one file per method, each a `zsampling.core.solvers`
solver registered in `zsampling.plugins.builtins` (import them from their modules).

The names of the 0.1.0 module ``zsampling/solvers.py`` (``LevelPoint``, ``History``, ``DDIM``,
...) still answer here, with a ``DeprecationWarning``, until zsampling 0.3.0 (CHANGELOG.md).
"""

from zsampling.core.moved import moved

__getattr__ = moved(__name__, "zsampling.core.solvers")
