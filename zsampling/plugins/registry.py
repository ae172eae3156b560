"""The registry: which components exist, who provided them, and their settings schemas."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from zsampling.errors import InvalidArgument

Kind = Literal["adapter", "schedule", "solver", "guider", "sampler", "patch", "observer", "metric"]
KINDS: tuple[Kind, ...] = (
    "adapter",
    "schedule",
    "solver",
    "guider",
    "sampler",
    "patch",
    "observer",
    "metric",
)

# The method a component of each kind must have: checked at registration, not at first use.
REQUIRED_METHOD: dict[Kind, str] = {
    "adapter": "load",
    "schedule": "sigmas",
    "solver": "step",
    "guider": "bind",
    "sampler": "sample",
    "patch": "apply",
    "observer": "bind",
    "metric": "score",
}


class PluginError(Exception):
    """A plugin misbehaved: the message names the plugin (and hook) at fault."""


@dataclass(frozen=True)
class Component:
    kind: Kind
    name: str
    cls: type[BaseModel]
    plugin: str

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
    components: list[Component] = field(default_factory=list)


@dataclass
class Registry:
    components: dict[Kind, dict[str, Component]] = field(
        default_factory=lambda: {k: {} for k in KINDS}
    )
    plugins: list[PluginInfo] = field(default_factory=list)

    def add(self, kind: Kind, cls: Any, plugin: PluginInfo, hook: str) -> None:
        where = f"plugin {plugin.name!r} ({hook})"
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            raise PluginError(f"{where} registered {cls!r}, which is not a pydantic model class")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"{where}: {cls.__name__} has no string class attribute 'name'")
        method = REQUIRED_METHOD[kind]
        if not callable(getattr(cls, method, None)):
            raise PluginError(f"{where}: {kind} {name!r} has no method {method}()")
        existing = self.components[kind].get(name)
        if existing is not None:
            raise PluginError(
                f"{where}: {kind} {name!r} is already registered by plugin {existing.plugin!r}"
            )
        component = Component(kind, name, cls, plugin.name)
        self.components[kind][name] = component
        plugin.components.append(component)

    def names(self, kind: Kind) -> list[str]:
        return sorted(self.components[kind])

    def get(self, kind: Kind, name: str, field_path: str = "") -> Component:
        try:
            return self.components[kind][name]
        except KeyError:
            raise InvalidArgument(
                field_path or f"{kind}.use",
                name,
                f"a registered {kind}: {', '.join(self.names(kind)) or '(none)'}",
            ) from None
