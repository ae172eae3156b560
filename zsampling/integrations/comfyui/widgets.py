"""A component's pydantic fields as ComfyUI node inputs, and the widget values back as settings.

The typed nodes are generated from the components' own fields, so a node shows every setting
with its default, bounds and description, and cannot drift from the class. ComfyUI widgets have
no "unset", so an optional setting (``None`` = a default worked out at run time, such as
"all but the last step") is a number widget whose value ``-1`` means unset; a sampler's main
guidance scale (the first of its declared ``scales``, see `zsampling.core.sampler`) is one too,
and unset means the guider's own ``cfg``.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from zsampling.core.errors import InvalidArgument
from zsampling.core.sampler import scale_fields

UNSET = -1
BIG = 1_000_000


def _optional(annotation: Any) -> tuple[Any, bool]:
    """``(inner, True)`` for ``X | None``, else ``(annotation, False)``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            return args[0], True
    return annotation, False


def _bounds(info: FieldInfo) -> tuple[float | None, float | None]:
    lo = hi = None
    for m in info.metadata:
        if isinstance(m, (annotated_types.Ge, annotated_types.Gt)):
            lo = float(m.ge if isinstance(m, annotated_types.Ge) else m.gt)  # type: ignore[arg-type]
        if isinstance(m, (annotated_types.Le, annotated_types.Lt)):
            hi = float(m.le if isinstance(m, annotated_types.Le) else m.lt)  # type: ignore[arg-type]
    return lo, hi


def widget(name: str, info: FieldInfo, *, main_scale: bool = False) -> tuple[Any, ...]:
    """The ComfyUI input spec of one field, or a `TypeError` for types a widget cannot hold.
    ``main_scale``: the field is a sampler's main guidance scale (unset: the guider's cfg)."""
    inner, optional = _optional(info.annotation)
    tooltip = info.description or name
    if main_scale:
        optional = True
        tooltip += f" {UNSET} = the guider's cfg."
    elif optional:
        tooltip += f" {UNSET} = the default."
    default = UNSET if optional else info.default
    lo, hi = _bounds(info)
    if typing.get_origin(inner) is Literal:
        return (list(typing.get_args(inner)), {"default": info.default, "tooltip": tooltip})
    if inner is bool:
        return ("BOOLEAN", {"default": bool(info.default), "tooltip": tooltip})
    if inner in (int, float):
        spec: dict[str, Any] = {
            "default": default,
            "min": UNSET if optional else (lo if lo is not None else -BIG),
            "max": hi if hi is not None else BIG,
            "tooltip": tooltip,
        }
        if inner is int:
            return ("INT", {k: int(v) if k != "tooltip" else v for k, v in spec.items()})
        return ("FLOAT", {**spec, "step": 0.01, "round": False})
    if inner is str:
        return ("STRING", {"default": info.default, "tooltip": tooltip})
    raise TypeError(f"setting {name!r} ({info.annotation}) has no ComfyUI widget")


def widgets(cls: type[BaseModel], exclude: tuple[str, ...] = ()) -> dict[str, tuple[Any, ...]]:
    """Input specs of every field of ``cls`` but ``exclude``, in the class's order."""
    main = scale_fields(cls)[:1]
    return {
        n: widget(n, f, main_scale=n in main)
        for n, f in cls.model_fields.items()
        if n not in exclude
    }


def settings_from(cls: type[BaseModel], values: Mapping[str, Any]) -> dict[str, Any]:
    """Widget values back as settings: ``-1`` in an optional (or main scale) widget is unset."""
    out: dict[str, Any] = {}
    main = scale_fields(cls)[:1]
    for name, value in values.items():
        info = cls.model_fields.get(name)
        optional = info is not None and (_optional(info.annotation)[1] or name in main)
        if optional and value == UNSET:
            continue
        out[name] = value
    return out


def parse_settings(text: str, component: str) -> dict[str, Any]:
    """A node's JSON settings text as a dict, or an `InvalidArgument` saying what is expected."""
    try:
        value = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as err:
        raise InvalidArgument(
            "settings", text, f"a JSON object of {component}'s settings ({err.msg})"
        ) from None
    if not isinstance(value, dict):
        raise InvalidArgument("settings", text, f"a JSON object of {component}'s settings")
    return value


def describe(cls: type[BaseModel]) -> str:
    """One line per setting (name, default, description), for a generic node's tooltip."""
    lines = []
    for name, info in cls.model_fields.items():
        lines.append(f"{name} = {info.default!r}: {info.description or ''}".rstrip(": "))
    return "; ".join(lines) if lines else "(no settings)"
