"""zsampling: composable reflective diffusion samplers (Z-Sampling, Restart, W2SD, ...).

The top level exports the stable API (`zsampling.api`: everything a plugin or a script needs) and
every built-in component class (`zsampling.plugins.builtins.BUILTINS`), so a component added to
the built-ins is exported without editing this file. Both lists live in those modules; nothing is
listed here. Names are imported on first use (PEP 562), so that ``zsampling --help`` and other
light commands do not pay for importing torch. This module is the top of the layer map (see
docs/architecture.md): it may name anything, and nothing inside the package imports it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from zsampling.core.version import VERSION

__version__ = VERSION


def exports() -> dict[str, Any]:
    """Every public name of the top level: the stable API, then the built-in component classes
    (an API name wins a clash; tests/test_public_api.py checks there is none)."""
    api = import_module("zsampling.api")
    from zsampling.plugins.builtins import BUILTINS

    names = {cls.__name__: cls for classes in BUILTINS.values() for cls in classes}
    names.update((name, value) for name, value in vars(api).items() if not name.startswith("_"))
    return names


def __getattr__(name: str) -> Any:
    if name == "__all__":
        return sorted(exports())
    if name.startswith("__"):  # copy/pickle probes: never worth importing torch for
        raise AttributeError(f"module 'zsampling' has no attribute {name!r}")
    found = exports()
    if name not in found:
        raise AttributeError(f"module 'zsampling' has no attribute {name!r}")
    globals()[name] = found[name]
    return found[name]


def __dir__() -> list[str]:
    return sorted([*globals(), *exports()])


if TYPE_CHECKING:
    from zsampling.api import *  # noqa: F403
    from zsampling.guiders import *  # noqa: F403
    from zsampling.samplers import *  # noqa: F403
    from zsampling.schedules import *  # noqa: F403
