"""The `Schedule` protocol: which levels a run walks, for a given model."""

from __future__ import annotations

import itertools
import math
from typing import ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor

from zsampling.core.errors import ComponentFault, shown
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


def origin(component: object) -> str:
    """Where a component's class comes from, for messages: ``built in`` or its top module (the
    run names the registering plugin instead, from the registry)."""
    module = type(component).__module__
    top = module.split(".")[0]
    return "built in" if top == "zsampling" else f"plugin module {top!r}"


def schedule_levels(schedule: Schedule, model: ModelAdapter) -> Tensor:
    """``schedule.sigmas(model)``, checked by `check_levels`."""
    return check_levels(schedule, schedule.sigmas(model))


def check_levels(schedule: Schedule, levels: object) -> Tensor:
    """A schedule's levels (float64), checked against the protocol: a 1-D tensor of ``steps + 1``
    levels, not NaN, non-negative, finite after the first, strictly decreasing.

    Every route from a schedule to a run (``sample``, a run's config check, the ComfyUI SIGMAS
    node) comes through here, so a schedule that breaks the contract is refused by name (a
    `ComponentFault`) before a step is taken, not found out as a wrong image or a solver's
    division by zero.

    Levels are float64 everywhere (the steps' coefficients are computed from them in float64),
    and a schedule must make them so: levels computed in float32 were already rounded (to about
    1e-7 relative, more than the steps' own float64 error), and widening them afterwards cannot
    undo that. Levels handed in ready (``sample(sigmas=...)``, k-diffusion's and ComfyUI's
    SIGMAS, float32 by their own conventions) are the caller's choice and are widened exactly
    instead (see `zsampling.core.path.validate_sigmas`).
    """
    name = str(getattr(schedule, "name", type(schedule).__name__))
    problem = _level_problem(levels, getattr(schedule, "steps", None))
    if problem is not None:
        raise ComponentFault(
            "schedule", name, problem, f"schedule {name!r} ({origin(schedule)}) {problem}"
        )
    assert isinstance(levels, Tensor)
    return levels


def _level_problem(levels: object, steps: object) -> str | None:
    """What is wrong with a schedule's levels (None: nothing)."""
    if not isinstance(levels, Tensor) or levels.ndim != 1:
        return f"gave {type(levels).__name__} {getattr(levels, 'shape', '')}, not a 1-D tensor"
    if levels.dtype != torch.float64:
        return (
            f"returned {levels.dtype} levels; a schedule gives a float64 tensor of levels (make "
            "them with dtype=torch.float64: a cast afterwards keeps the float32 rounding)"
        )
    values = levels.tolist()
    if isinstance(steps, int) and len(values) != steps + 1:
        return f"gave {len(values)} levels for {steps} steps (a schedule gives steps + 1)"
    if len(values) < 2:
        return f"gave {len(values)} level(s); at least 2 are needed (one step)"
    if any(math.isnan(v) or v < 0 for v in values):
        return f"gave {shown(values)}: levels must be >= 0 and not NaN"
    if any(math.isinf(v) for v in values[1:]):
        return f"gave {shown(values)}: only the first level may be infinite"
    if any(b >= a for a, b in itertools.pairwise(values)):
        return f"gave {shown(values)}: levels must be strictly decreasing"
    return None
