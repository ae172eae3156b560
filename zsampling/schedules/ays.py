"""The ``align-your-steps`` schedule (alias ``ays``): Align Your Steps (Sabour et al., ICML 2024).

AYS publishes optimised 10-step schedules per model; diffusers ships them as
``diffusers.schedulers.AysSchedules``. At 10 steps we use its integer timesteps on the model's own
training grid (plus a final sigma 0), which is exactly what a pipeline does with
``pipe(..., timesteps=AysSchedules["StableDiffusionTimesteps"])`` and DPM-Solver (tested). For
other step counts the 11 levels (the 10 timesteps' sigmas and the model's sigma_min) are
interpolated log-linearly, as the AYS paper's ``loglinear_interp`` does, and the last level is set
to 0 (as ComfyUI's AlignYourSteps node does), so 10 steps is the same schedule either way.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.errors import InvalidArgument
from zsampling.core.model import ModelAdapter
from zsampling.core.schedule import MAX_STEPS

AYS_TIMESTEPS = {"sd": "StableDiffusionTimesteps", "sdxl": "StableDiffusionXLTimesteps"}


def ays_timesteps(family: Literal["sd", "sdxl"]) -> list[int]:
    """The published 10-step timesteps (noisiest first)."""
    from diffusers.schedulers import AysSchedules

    table: Any = AysSchedules  # dict[str, list[float]]
    return [int(t) for t in table[AYS_TIMESTEPS[family]]]


def loglinear_interp(levels: Tensor, n: int) -> Tensor:
    """``n`` levels spread like ``levels`` (decreasing, all > 0), interpolated in log-sigma."""
    ys = levels.to(torch.float64).flip(0).log()
    xs = torch.linspace(0, 1, len(ys), dtype=torch.float64)
    new_xs = torch.linspace(0, 1, n, dtype=torch.float64)
    idx = torch.searchsorted(xs, new_xs).clamp(1, len(xs) - 1)
    w = (new_xs - xs[idx - 1]) / (xs[idx] - xs[idx - 1])
    new_ys = ys[idx - 1] + w * (ys[idx] - ys[idx - 1])
    return new_ys.exp().flip(0)


class AlignYourSteps(Component):
    """Align-Your-Steps levels for SD 1.x/2.x or SDXL; log-linear for step counts other than 10."""

    name: ClassVar[str] = "align-your-steps"
    aliases: ClassVar[tuple[str, ...]] = ("ays",)

    steps: int = Field(
        10, ge=1, le=MAX_STEPS, description="Number of denoising steps T (10 = the published)."
    )
    model: Literal["auto", "sd", "sdxl"] = Field(
        "auto", description="Which published schedule: sd | sdxl | auto (from the model)."
    )

    def family(self, model: ModelAdapter) -> Literal["sd", "sdxl"]:
        if self.model != "auto":
            return self.model
        family = getattr(model, "family", None)
        if family not in AYS_TIMESTEPS:
            raise InvalidArgument(
                "schedule.model", "auto", "'sd' or 'sdxl': this model does not say which it is"
            )
        return family

    def sigmas(self, model: ModelAdapter) -> Tensor:
        if model.table is None:
            raise InvalidArgument(
                "schedule.use", self.name, "a model on a DDPM timestep grid (SD, SDXL)"
            )
        table = model.table
        if table.num_train_timesteps != 1000:
            raise InvalidArgument(
                "schedule.use", self.name, "a model trained on 1000 timesteps (SD, SDXL)"
            )
        published = table.sigma_at(torch.tensor(ays_timesteps(self.family(model))))
        zero = torch.zeros(1, dtype=torch.float64)
        if self.steps == len(published):
            return torch.cat([published, zero])
        anchors = torch.cat([published, table.sigmas[:1]])  # ... down to the model's sigma_min
        return torch.cat([loglinear_interp(anchors, self.steps + 1)[:-1], zero])
