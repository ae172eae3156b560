"""The ``flow-match`` schedule: a flow-matching model's own shifted levels.

The levels a ``FlowMatchEulerDiscreteScheduler`` built from the model's scheduler config walks
(its shifted ``t`` values, dynamic shifting included), converted to zsampling levels with
`zsampling.core.levels.sigma_from_t`. With it, standard sampling reproduces the pipeline's own
``__call__`` (tested on SD3, SD3.5 and FLUX).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.errors import InvalidArgument
from zsampling.core.levels import sigma_from_t
from zsampling.core.model import ModelAdapter
from zsampling.core.schedule import MAX_STEPS


def flow_scheduler_sigmas(
    model: ModelAdapter, steps: int, shift: float | None = None, mu: float | None = None
) -> Tensor:
    """The levels of the model's ``FlowMatchEulerDiscreteScheduler`` at ``steps`` steps.

    A fresh scheduler from the model's config (``shift`` overrides the config's) is given what
    the model's pipeline gives it: ``set_timesteps(steps)``, plus the pipeline's own ``sigmas``
    where it passes some (FLUX: ``linspace(1, 1/steps, steps)``, the model's
    ``schedule_sigmas``), plus, with ``use_dynamic_shifting``, ``mu`` from the image size as that
    pipeline computes it (the model's ``dynamic_shift_mu``; FLUX counts packed tokens), unless
    ``mu`` is given. Its ``t`` values (ending in 0) become levels with `sigma_from_t`.
    """
    config = getattr(model, "scheduler_config", None)
    if config is None or model.process.name != "flow":
        raise InvalidArgument(
            "schedule.use", "flow-match", "a flow-matching model (the 'sd3' or 'flux' adapter)"
        )
    from diffusers import FlowMatchEulerDiscreteScheduler

    overrides = {} if shift is None else {"shift": shift}
    sched = FlowMatchEulerDiscreteScheduler.from_config(config, **overrides)
    kwargs: dict[str, Any] = {}
    own = getattr(model, "schedule_sigmas", None)
    sigmas = own(steps) if own is not None else None
    if sigmas is not None and not sched.config.get("use_flow_sigmas", False):
        kwargs["sigmas"] = sigmas
    if sched.config.get("use_dynamic_shifting", False):
        if mu is None:
            rule = getattr(model, "dynamic_shift_mu", None)
            if rule is None:
                raise InvalidArgument("schedule.mu", None, "mu for dynamic shifting")
            mu = rule(sched.config)
        kwargs["mu"] = float(mu)
    if "sigmas" in kwargs:
        sched.set_timesteps(**kwargs)
    else:
        sched.set_timesteps(steps, **kwargs)
    return sigma_from_t(sched.sigmas)


class FlowMatch(Component):
    """The flow-matching scheduler's own shifted levels (``FlowMatchEulerDiscreteScheduler``)."""

    name: ClassVar[str] = "flow-match"

    steps: int = Field(28, ge=1, le=MAX_STEPS, description="Number of denoising steps T.")
    shift: float | None = Field(
        None, gt=0, description="Timestep shift; default: the model's scheduler config."
    )
    mu: float | None = Field(
        None, description="Dynamic-shifting mu; default: from the image size, as the pipeline."
    )

    def sigmas(self, model: ModelAdapter) -> Tensor:
        return flow_scheduler_sigmas(model, self.steps, self.shift, self.mu)
