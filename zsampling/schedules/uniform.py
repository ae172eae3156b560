"""The ``uniform`` schedule: evenly spaced training timesteps, as diffusers' schedulers space them.

Spacings follow diffusers' ``timestep_spacing`` (tested against the schedulers). A schedule that
ends above sigma 0 (DDIM's ``set_alpha_to_one = False``) leaves the last bit of noise in, exactly
as diffusers does.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.errors import InvalidArgument
from zsampling.core.levels import TimestepTable
from zsampling.core.model import ModelAdapter
from zsampling.core.schedule import MAX_STEPS

Spacing = Literal["leading", "trailing", "linspace"]


def discrete_timesteps(table: TimestepTable, steps: int, spacing: Spacing) -> Tensor:
    """Integer timesteps, noisiest first, as diffusers' ``set_timesteps`` spaces them."""
    n = table.num_train_timesteps
    if not 1 <= steps <= n:
        raise InvalidArgument("schedule.steps", steps, f"an integer in [1, {n}] for this model")
    if spacing == "leading":
        t = (torch.arange(steps, dtype=torch.float64) * (n // steps)).round().flip(0)
        t = t + table.steps_offset
    elif spacing == "trailing":
        t = torch.arange(float(n), 0.0, -n / steps, dtype=torch.float64).round() - 1
    else:
        t = torch.linspace(0, n - 1, steps, dtype=torch.float64).round().flip(0)
    return t.to(torch.long)


def require_table(model: ModelAdapter, schedule: str) -> TimestepTable:
    if model.table is None:
        raise InvalidArgument(
            "schedule.use", schedule, "a schedule for continuous-level models, e.g. 'karras'"
        )
    return model.table


class Uniform(Component):
    """Evenly spaced training timesteps (diffusers' DDIM/Euler/DPM-Solver ``timestep_spacing``)."""

    name: ClassVar[str] = "uniform"

    steps: int = Field(50, ge=1, le=MAX_STEPS, description="Number of denoising steps T.")
    spacing: Spacing = Field("leading", description="leading | trailing | linspace.")
    final: Literal["model", "zero"] = Field(
        "model",
        description="Last level: 'model' = DDIM's (alphas_cumprod[0] unless set_alpha_to_one), "
        "'zero' = sigma 0 (Euler, DPM-Solver).",
    )

    def timesteps(self, model: ModelAdapter) -> Tensor:
        return discrete_timesteps(require_table(model, self.name), self.steps, self.spacing)

    def sigmas(self, model: ModelAdapter) -> Tensor:
        table = require_table(model, self.name)
        last = table.final_sigma() if self.final == "model" else 0.0
        levels = table.sigma_at(self.timesteps(model))
        return torch.cat([levels, torch.tensor([last], dtype=torch.float64)])
