"""Import paths that moved: the old module keeps answering, with a ``DeprecationWarning``.

A plugin written against an earlier documented import path (``from zsampling.path import
SamplingPath``) must keep importing for at least one minor version after a move, and its author
must learn the new path from the warning, not from a ``ModuleNotFoundError``. CHANGELOG.md lists
every moved path and the version that removes it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

REMOVED_IN = "0.3.0"
"""The release that drops the old paths (deprecated since the release after 0.1.0)."""


def moved(old: str, *homes: str, renamed: Mapping[str, str] | None = None) -> Callable[[str], Any]:
    """A module ``__getattr__`` for the module ``old``, whose names now live in ``homes``.

    Each name is looked up in ``homes`` in order (list the stable API, ``zsampling.api``, first:
    the warning names the first home that has it); ``renamed`` maps an old name to its new one.
    The homes are imported on first use, so the old module costs nothing until it is used.
    """

    def __getattr__(name: str) -> Any:
        new = (renamed or {}).get(name, name)
        if not name.startswith("__"):
            for home in homes:
                module = import_module(home)
                if hasattr(module, new):
                    warnings.warn(
                        f"{old}.{name} is deprecated and will be removed in zsampling "
                        f"{REMOVED_IN}: import {new} from {home} instead",
                        DeprecationWarning,
                        stacklevel=2,
                    )
                    return getattr(module, new)
        raise AttributeError(f"module {old!r} has no attribute {name!r}")

    return __getattr__
