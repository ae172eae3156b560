"""The `ReflectiveSampler` protocol: a sampler chooses the route, the path does the stepping.

A sampler is a pydantic model (its fields are its settings, validated from config files) with a
``name`` and a ``sample(x, path)`` method. Everything else, the model, guidance, solver, levels,
noise and observers, comes through `zsampling.core.path.SamplingPath`, so a third-party sampler is
written against this protocol alone. Optionally a sampler may define ``check_steps(steps)`` to
reject settings that do not fit the schedule before any model is loaded.
"""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

from torch import Tensor

from zsampling.core.errors import InvalidArgument
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
