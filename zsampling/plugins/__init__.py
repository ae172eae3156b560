"""The plugin system: hook specs, the registry, and how plugins are found."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pluggy

from zsampling.core.kinds import Kind
from zsampling.plugins.hookspecs import HOOKS, Register

hookimpl = pluggy.HookimplMarker("zsampling")
"""Decorate your plugin's hook implementations with this."""

__all__ = ["hookimpl", "registering"]


def registering(components: Mapping[Kind, Sequence[type]]) -> object:
    """A plugin object that registers ``components`` (kind -> classes, in order) through each
    kind's hook: what zsampling's built-ins are, and the shortest way to write a plugin whose
    hooks do nothing but register (``registering({"sampler": [MySampler]})``)."""

    def implementation(kind: Kind) -> Callable[..., None]:
        def register_all(self: Any, register: Register) -> None:
            for cls in components[kind]:
                register(cls)

        register_all.__name__ = register_all.__qualname__ = HOOKS[kind]
        return hookimpl(register_all)

    hooks = {HOOKS[kind]: implementation(kind) for kind in components}
    return type("Components", (), hooks)()
