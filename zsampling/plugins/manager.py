"""Loading plugins: built-ins first, then every entry point in group ``zsampling``.

A plugin that fails to import, or whose hook raises, is recorded with its error (the CLI lists
it by name) and the others keep working. Hook implementations are called one plugin at a time so
that every component, and every error, is attributed to the plugin it came from.
"""

from __future__ import annotations

import importlib.metadata as md
from collections.abc import Iterable
from functools import lru_cache
from types import ModuleType
from typing import Any

import pluggy

from zsampling.core.kinds import KINDS, Kind
from zsampling.core.version import VERSION
from zsampling.plugins import hookspecs
from zsampling.plugins.registry import PluginError, PluginInfo, Registry

ENTRY_POINT_GROUP = "zsampling"
HOOKS: dict[Kind, str] = {kind: f"zsampling_register_{kind}s" for kind in KINDS}
HOOKS["patch"] = "zsampling_register_patches"


def _version() -> str:
    try:
        return md.version("zsampling")
    except md.PackageNotFoundError:  # running from a source tree
        return VERSION


def build_registry(
    extra_plugins: Iterable[tuple[str, Any]] = (), entry_points: bool = True
) -> Registry:
    """A fresh registry: built-ins, installed entry points, then ``extra_plugins`` (tests)."""
    from zsampling.plugins import builtins

    pm = pluggy.PluginManager("zsampling")
    pm.add_hookspecs(hookspecs)
    registry = Registry()
    loaded: list[tuple[PluginInfo, ModuleType | Any]] = [
        (PluginInfo("zsampling", _version(), "built-in"), builtins)
    ]
    if entry_points:
        for ep in md.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist
            info = PluginInfo(
                ep.name,
                dist.version if dist else "?",
                f"entry point {ep.value}" + (f" in {dist.name}" if dist else ""),
            )
            try:
                loaded.append((info, ep.load()))
            except Exception as exc:  # a broken plugin must not take the others down
                info.error = f"import failed: {type(exc).__name__}: {exc}"
                registry.plugins.append(info)
    for name, plugin in extra_plugins:
        loaded.append((PluginInfo(name, "local", "registered in-process"), plugin))

    for info, plugin in loaded:
        try:
            pm.register(plugin, name=info.name)
        except Exception as exc:
            info.error = f"registration failed: {type(exc).__name__}: {exc}"
            registry.plugins.append(info)
            continue
        registry.plugins.append(info)
    pm.check_pending()

    for info in registry.plugins:
        if info.error:
            continue
        _collect(pm, registry, info)
    return registry


def _collect(pm: pluggy.PluginManager, registry: Registry, info: PluginInfo) -> None:
    for kind, hook_name in HOOKS.items():
        hook = getattr(pm.hook, hook_name)
        for impl in hook.get_hookimpls():
            if impl.plugin_name != info.name:
                continue

            def register(cls: Any, kind: Kind = kind, hook_name: str = hook_name) -> None:
                registry.add(kind, cls, info, hook_name)

            try:
                impl.function(register=register)
            except PluginError as exc:
                info.error = str(exc)
            except Exception as exc:
                info.error = (
                    f"plugin {info.name!r} hook {hook_name} raised {type(exc).__name__}: {exc}"
                )


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    """The registry of this process (built once)."""
    return build_registry()
