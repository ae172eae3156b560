"""The `ReflectiveSampler` protocol: a sampler chooses the route, the path does the stepping.

A sampler is a pydantic model (its fields are its settings, validated from config files) with a
``name`` and a ``sample(x, path)`` method. Everything else, the model, guidance, solver, levels,
noise and observers, comes through `zsampling.core.path.SamplingPath`, so a third-party sampler is
written against this protocol alone. Optionally a sampler may define ``check_steps(steps)`` to
reject settings that do not fit the schedule before any model is loaded, and
``conditionings(prompts)`` to condition some moves on other prompts (see `prompt_variants`).

Guidance scales are part of the contract: a sampler names the settings that are guidance scales
in a ``scales`` class attribute, the main (strong) one first::

    scales: ClassVar[tuple[str, ...]] = ("guidance", "inversion_guidance")

Everything that needs a sampler's scale (ComfyUI's "use the guider's cfg", the k-diffusion
functions' ``cond_scale`` default, the leaderboard's sweeps, ``zsampling evaluate``, the NaN hint
of a run) reads it through `scale_fields`, `guidance_scales`, `main_scale` and `with_main_scale`,
never by a field's name. A sampler that declares no ``scales`` has none: it runs wherever no
scale is needed, and where one is (``with_main_scale``) the error says to declare it.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from torch import Tensor

from zsampling.core.errors import ComponentFault, InvalidArgument
from zsampling.core.path import SamplingPath

Sampler = TypeVar("Sampler")


@runtime_checkable
class ReflectiveSampler(Protocol):
    """``sample`` takes the starting latent at level ``t_0`` and returns it at level ``t_T``."""

    name: ClassVar[str]

    def sample(self, x: Tensor, path: SamplingPath) -> Tensor: ...


def walk(sampler: ReflectiveSampler, x: Tensor, path: SamplingPath) -> Tensor:
    """``sampler.sample(x, path)``, then the path's deferred finiteness check (`path.finish`):
    how every caller runs a sampler. If the sampler raises, NaN latents made before are the
    error reported (the sampler's own exception chained to it)."""
    try:
        out = sampler.sample(x, path)
    except Exception:
        path.finish()
        raise
    path.finish()
    return out


def scale_fields(sampler: Any) -> tuple[str, ...]:
    """The names of a sampler's (or sampler class's) guidance-scale settings, main first: its
    ``scales`` class attribute, checked to name number settings of the class; ``()`` if none."""
    cls = sampler if isinstance(sampler, type) else type(sampler)
    declared = getattr(cls, "scales", ())
    fields = getattr(cls, "model_fields", {})
    names = (declared,) if isinstance(declared, str) else tuple(declared)
    for field in names:
        info = fields.get(field) if isinstance(field, str) else None
        if info is None or not _numeric(info.annotation):
            name = getattr(cls, "name", cls.__name__)
            raise ComponentFault(
                "sampler",
                name,
                f"declares scales = {names!r}, but {field!r} is not one of its number settings "
                f"({', '.join(fields) or 'none'})",
            )
    return names


def _numeric(annotation: Any) -> bool:
    """Whether a setting's type is a number, or a number or None (a scale with a default)."""
    allowed = {float, int, type(None)}
    args = typing.get_args(annotation) or (annotation,)
    return all(a in allowed for a in args) and any(a in (float, int) for a in args)


def guidance_scales(sampler: Any) -> dict[str, float | None]:
    """A sampler's guidance scales by setting name, main first (None: a scale left to its
    default, such as Asymmetry Zigzag's ``inversion_guidance``)."""
    return {field: getattr(sampler, field) for field in scale_fields(sampler)}


def main_scale(sampler: Any) -> float | None:
    """The sampler's main (strong) guidance scale, or None when it declares no scale."""
    fields = scale_fields(sampler)
    return None if not fields else getattr(sampler, fields[0])


def with_main_scale(sampler: Sampler, value: float) -> Sampler:
    """A copy of ``sampler`` with its main guidance scale set to ``value`` (validated), or an
    `InvalidArgument` saying that the sampler declares no scale."""
    fields = scale_fields(sampler)
    name = getattr(sampler, "name", type(sampler).__name__)
    if not fields:
        raise InvalidArgument(
            "sampler",
            name,
            "a sampler with a guidance scale: this one declares none (a sampler class names its "
            "scale settings in `scales`, see docs/writing-a-sampler.md)",
        )
    settings = sampler.model_dump() if hasattr(sampler, "model_dump") else vars(sampler)
    return type(sampler)(**{**settings, fields[0]: value})


def check_reflection_steps(field: str, value: int | None, steps: int) -> int:
    """Resolve a "first lambda steps reflect" setting: None means ``T - 1``; valid is [0, T-1]."""
    if value is None:
        return steps - 1
    if not 0 <= value <= steps - 1:
        raise InvalidArgument(
            field, value, f"an integer in [0, {steps - 1}] for a {steps}-step schedule"
        )
    return value


RESERVED_CONDITIONINGS = ("cond", "uncond")
"""The names every guider has: the prompts, and the negative prompts (or the empty prompt)."""


def prompt_variants(sampler: Any, prompts: Sequence[str] | None) -> dict[str, list[str]]:
    """The named prompt lists a sampler's moves may ask for, one prompt per item of the batch.

    A sampler that conditions some moves on other prompts (Asymmetry Zigzag's zag prompt, a W2SD
    prompt variant) defines ``conditionings(prompts) -> {name: [prompt per item]}``; the run
    encodes each list once with every model, and ``path.denoise(..., conditioning=name)`` (or
    ``invert``/``predict``) uses it as that move's positive branch. Samplers without the method
    need none. A returned value the run cannot use is refused here, naming the sampler.
    """
    hook = getattr(sampler, "conditionings", None)
    if hook is None:
        return {}
    name = getattr(sampler, "name", type(sampler).__name__)
    if prompts is None:
        raise InvalidArgument(
            "prompts",
            None,
            f"prompts: sampler {name!r} conditions some moves on prompts made from the run's "
            "own (its conditionings()), which ready conditioning= cannot give",
        )
    items = list(prompts)
    variants = hook(items)
    if not isinstance(variants, dict):
        raise ComponentFault(
            "sampler", name, f"conditionings() returned {type(variants).__name__}, not a dict"
        )
    out: dict[str, list[str]] = {}
    for key, texts in variants.items():
        if key in RESERVED_CONDITIONINGS or not isinstance(key, str) or not key:
            raise ComponentFault(
                "sampler",
                name,
                f"conditionings() named {key!r}; names must be non-empty strings other than "
                f"{', '.join(RESERVED_CONDITIONINGS)}",
            )
        texts = list(texts) if not isinstance(texts, str) else [texts]
        if len(texts) != len(items) or not all(isinstance(t, str) for t in texts):
            raise ComponentFault(
                "sampler",
                name,
                f"conditionings()[{key!r}] must be one prompt (str) per item of the batch "
                f"({len(items)}), got {texts!r}",
            )
        out[key] = texts
    return out
