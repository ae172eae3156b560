"""The ``normal`` and ``sgm-uniform`` schedules: evenly spaced (fractional) timesteps.

Timesteps are spaced evenly from the timestep of the model's largest level to that of its
smallest, and each becomes a level through the model's ladder (`zsampling.schedules.space`), then
0 is appended. ``normal`` (ComfyUI's ``normal``) includes both ends in ``steps`` points;
``sgm-uniform`` (ComfyUI's ``sgm_uniform``, Stability's SGM code) spaces ``steps + 1`` points and
drops the last, so it stops one stride above the smallest level.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.model import ModelAdapter
from zsampling.core.schedule import MAX_STEPS
from zsampling.schedules.space import sigma_space


def timestep_spaced(model: ModelAdapter, name: str, steps: int, drop_last: bool) -> Tensor:
    """Levels of evenly spaced timesteps between the model's extremes (module docstring)."""
    space = sigma_space(model)
    ladder = space.need_ladder(name)
    ends = ladder.timestep(torch.tensor([space.sigma_max, space.sigma_min], dtype=torch.float64))
    count = steps + 1 if drop_last else steps
    ts = torch.linspace(float(ends[0]), float(ends[1]), count, dtype=torch.float64)
    return space.levels(ladder.sigma(ts[:steps]))


class Normal(Component):
    """Evenly spaced timesteps from the largest to the smallest level (ComfyUI's ``normal``)."""

    name: ClassVar[str] = "normal"

    steps: int = Field(25, ge=1, le=MAX_STEPS, description="Number of denoising steps T.")

    def sigmas(self, model: ModelAdapter) -> Tensor:
        return timestep_spaced(model, self.name, self.steps, drop_last=False)


class SGMUniform(Component):
    """Evenly spaced timesteps, the smallest level left out (ComfyUI's ``sgm_uniform``)."""

    name: ClassVar[str] = "sgm-uniform"

    steps: int = Field(25, ge=1, le=MAX_STEPS, description="Number of denoising steps T.")

    def sigmas(self, model: ModelAdapter) -> Tensor:
        return timestep_spaced(model, self.name, self.steps, drop_last=True)
