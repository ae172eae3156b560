"""The registry: which components exist, who provided them, and their settings schemas.

Every component is checked when it registers, against the protocol of its kind
(`zsampling.core.kinds.PROTOCOLS`): a pydantic model class with a string ``name`` and each method
of the protocol, callable with the protocol's arguments. A plugin that gets this wrong is named at
start-up, not at its first use in someone's run.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from zsampling.core.errors import InvalidArgument
from zsampling.core.kinds import KINDS, PROTOCOLS, Kind

__all__ = ["KINDS", "Kind", "PluginError", "PluginInfo", "Registered", "Registry"]


class PluginError(Exception):
    """A plugin misbehaved: the message names the plugin (and hook) at fault."""


@dataclass(frozen=True)
class Registered:
    """One registered component class, with where it came from."""

    kind: Kind
    name: str
    cls: type[BaseModel]
    plugin: str
    aliases: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        """The first paragraph of the class docstring, on one line."""
        paragraph = (self.cls.__doc__ or "").strip().split("\n\n")[0]
        return " ".join(paragraph.split())

    def settings_schema(self) -> dict[str, Any]:
        return self.cls.model_json_schema()


@dataclass
class PluginInfo:
    """One loaded (or failed) plugin: where it came from and what it registered."""

    name: str
    version: str
    source: str
    error: str | None = None
    components: list[Registered] = field(default_factory=list)


PASSED_BY_NAME: dict[Kind, tuple[str, ...]] = {"solver": ("ctx",)}
"""Required parameters a kind's method may add to its protocol's, which the caller passes by name
(a solver's `zsampling.core.solvers.StepContext`)."""


def protocol_methods(protocol: type) -> dict[str, inspect.Signature]:
    """The methods a protocol asks for, with their signatures (``name`` and dunders aside)."""
    return {
        attr: inspect.signature(member)
        for attr, member in vars(protocol).items()
        if callable(member) and not attr.startswith("_") and not isinstance(member, property)
    }


def signature_problem(
    method: Any, wanted: inspect.Signature, also: tuple[str, ...] = ()
) -> str | None:
    """Why ``method`` (an unbound function) cannot be called as ``wanted`` says, or None.

    The protocol's arguments are passed positionally (after ``self``); the method may take more,
    as long as they have defaults or are named in ``also`` (passed by name by the caller, as a
    solver's ``ctx``).
    """
    try:
        sig = inspect.signature(method)
    except (TypeError, ValueError):
        return None  # builtins and C callables: nothing to check
    try:  # self and the protocol's arguments by position, ``also`` by name where declared
        sig.bind(*range(len(wanted.parameters)), **{n: None for n in also if n in sig.parameters})
    except TypeError:
        takes = ", ".join(["self", *(str(p) for p in list(sig.parameters.values())[1:])])
        return f"takes ({takes}); expected ({', '.join(['self', *list(wanted.parameters)[1:]])})"
    return None


@dataclass
class Registry:
    components: dict[Kind, dict[str, Registered]] = field(
        default_factory=lambda: {k: {} for k in KINDS}
    )
    aliases: dict[Kind, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})
    plugins: list[PluginInfo] = field(default_factory=list)

    def check(self, kind: Kind, cls: Any, plugin: PluginInfo, hook: str) -> None:
        """Refuse a class that does not fit ``kind`` (its shape; names are `add`'s business)."""
        where = f"plugin {plugin.name!r} ({hook})"
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            raise PluginError(f"{where} registered {cls!r}, which is not a pydantic model class")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"{where}: {cls.__name__} has no string class attribute 'name'")
        for method, wanted in protocol_methods(PROTOCOLS[kind]).items():
            impl = getattr(cls, method, None)
            if not callable(impl):
                raise PluginError(f"{where}: {kind} {name!r} has no method {method}()")
            problem = signature_problem(impl, wanted, PASSED_BY_NAME.get(kind, ()))
            if problem:
                raise PluginError(f"{where}: {kind} {name!r} method {method}() {problem}")

    def add(self, kind: Kind, cls: Any, plugin: PluginInfo, hook: str) -> None:
        """Check ``cls`` and claim its name and aliases; the first plugin to claim a name keeps
        it, a later one is refused naming both."""
        self.check(kind, cls, plugin, hook)
        name = cls.name
        aliases = tuple(getattr(cls, "aliases", ()) or ())
        for taken in (name, *aliases):
            owner = self.lookup(kind, taken)
            if owner is not None:
                raise PluginError(
                    f"plugin {plugin.name!r} ({hook}): {kind} {taken!r} is already registered "
                    f"by plugin {owner.plugin!r}"
                )
        component = Registered(kind, name, cls, plugin.name, aliases)
        self.components[kind][name] = component
        for alias in aliases:
            self.aliases[kind][alias] = name
        plugin.components.append(component)

    def clear(self) -> None:
        """Forget every component (the plugins stay listed)."""
        for kind in KINDS:
            self.components[kind].clear()
            self.aliases[kind].clear()
        for plugin in self.plugins:
            plugin.components.clear()

    def names(self, kind: Kind) -> list[str]:
        return sorted(self.components[kind])

    def labels(self, kind: Kind) -> list[str]:
        """Registered names for messages, each with its aliases: ``align-your-steps (or ays)``."""
        labels = []
        for name in self.names(kind):
            aliases = self.components[kind][name].aliases
            labels.append(f"{name} (or {', '.join(aliases)})" if aliases else name)
        return labels

    def lookup(self, kind: Kind, name: str) -> Registered | None:
        """The component registered under ``name`` or one of its aliases, or None."""
        canonical = self.aliases[kind].get(name, name)
        return self.components[kind].get(canonical)

    def get(self, kind: Kind, name: str, field_path: str = "") -> Registered:
        found = self.lookup(kind, name)
        if found is None:
            raise InvalidArgument(
                field_path or f"{kind}.use",
                name,
                f"a registered {kind}: {', '.join(self.labels(kind)) or '(none)'}",
            )
        return found
