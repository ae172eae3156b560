"""The `Schedule` protocol: which levels a run walks, for a given model."""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor

from zsampling.core.errors import ComponentFault
from zsampling.core.model import ModelAdapter

#: The most steps a built-in schedule takes: far past any use (a 1000-timestep model has at most
#: 1000 distinct levels), low enough that a typo (``steps = 1e9``) is refused in the config instead
#: of exhausting memory when the levels are made.
MAX_STEPS = 10_000


@runtime_checkable
class Schedule(Protocol):
    """``[schedule]``: ``sigmas(model)`` gives ``steps + 1`` strictly decreasing float64 levels.

    The first level is the noisiest (``inf`` allowed for flow models' pure noise); the last is
    where sampling ends (0, or a model's smallest level). A schedule may also offer
    ``noise_scale(model)``, the starting-noise factor in the model's space, when it differs from
    the process's (see `zsampling.core.sampling.sample`).
    """

    name: ClassVar[str]

    @property
    def steps(self) -> int: ...

    def sigmas(self, model: ModelAdapter) -> Tensor: ...


def scheduled_levels(schedule: Schedule, model: ModelAdapter) -> Tensor:
    """``schedule.sigmas(model)``, refused (naming the schedule) unless it is a float64 tensor.

    Levels are float64 everywhere (the steps' coefficients are computed from them in float64). A
    schedule must make them so: levels computed in float32 were already rounded (to about 1e-7
    relative, more than the steps' own float64 error), and widening them afterwards cannot undo
    that, so accepting them would silently give a run other than the schedule's author meant.
    Levels handed in ready (``sample(sigmas=...)``, k-diffusion's and ComfyUI's SIGMAS, float32
    by their own conventions) are the caller's choice and are widened exactly instead (see
    `zsampling.core.path.validate_sigmas`).
    """
    levels = schedule.sigmas(model)
    if not isinstance(levels, Tensor) or levels.dtype != torch.float64:
        got = f"{levels.dtype} levels" if isinstance(levels, Tensor) else type(levels).__name__
        raise ComponentFault(
            "schedule",
            str(getattr(schedule, "name", type(schedule).__name__)),
            f"returned {got}; a schedule gives a float64 tensor of levels (make them with "
            "dtype=torch.float64: a cast afterwards keeps the float32 rounding)",
        )
    return levels
