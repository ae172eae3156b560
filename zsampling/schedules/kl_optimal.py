"""The ``kl-optimal`` schedule: levels evenly spaced in ``arctan(sigma)``.

The schedule of "Align Your Steps"' KL-optimal analysis (Sabour et al., 2024, section 3), as
ComfyUI's ``kl_optimal`` computes it (from AUTOMATIC1111's pull request 15608): in the model's
sigma space, from its largest level to its smallest, then 0.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from pydantic import Field
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.model import ModelAdapter
from zsampling.core.schedule import MAX_STEPS
from zsampling.schedules.space import sigma_space


def kl_optimal_sigmas(steps: int, sigma_min: float, sigma_max: float) -> Tensor:
    """``tan`` of ``steps`` even steps from ``atan(sigma_max)`` to ``atan(sigma_min)``."""
    if steps == 1:
        return torch.tensor([sigma_max], dtype=torch.float64)
    w = torch.arange(steps, dtype=torch.float64) / (steps - 1)
    return (w * math.atan(sigma_min) + (1 - w) * math.atan(sigma_max)).tan()


class KLOptimal(Component):
    """Levels evenly spaced in ``arctan(sigma)`` over the model's range (or the one given)."""

    name: ClassVar[str] = "kl-optimal"

    steps: int = Field(25, ge=1, le=MAX_STEPS, description="Number of denoising steps T.")
    sigma_min: float | None = Field(None, gt=0, description="Smallest level; default: the model's.")
    sigma_max: float | None = Field(None, gt=0, description="Largest level; default: the model's.")

    def sigmas(self, model: ModelAdapter) -> Tensor:
        space = sigma_space(model)
        lo, hi = space.bounds(self.sigma_min, self.sigma_max)
        return space.levels(kl_optimal_sigmas(self.steps, lo, hi))
