"""The `ReflectiveSampler` protocol: a sampler chooses the route, the path does the stepping.

A sampler is a pydantic model (its fields are its settings, validated from config files) with a
``name`` and a ``sample(x, path)`` method. Everything else, the model, guidance, solver, levels,
noise and observers, comes through `zsampling.core.path.SamplingPath`, so a third-party sampler is
written against this protocol alone. Optionally a sampler may define ``check_steps(steps)`` to
reject settings that do not fit the schedule before any model is loaded, and
``conditionings(prompts)`` to condition some moves on other prompts (see `prompt_variants`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

from torch import Tensor

from zsampling.core.errors import ComponentFault, InvalidArgument
from zsampling.core.path import SamplingPath


@runtime_checkable
class ReflectiveSampler(Protocol):
    """``sample`` takes the starting latent at level ``t_0`` and returns it at level ``t_T``."""

    name: ClassVar[str]

    def sample(self, x: Tensor, path: SamplingPath) -> Tensor: ...


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
