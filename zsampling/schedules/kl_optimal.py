"""The ``kl-optimal`` schedule: levels evenly spaced in ``arctan(sigma)``.

The schedule of "Align Your Steps"' KL-optimal analysis (Sabour et al., 2024, section 3), as
ComfyUI's ``kl_optimal`` computes it (from AUTOMATIC1111's pull request 15608): in the model's
sigma space, from its largest level to its smallest, then 0.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from zsampling.schedules.space import RangeSchedule


def kl_optimal_sigmas(steps: int, sigma_min: float, sigma_max: float) -> Tensor:
    """``tan`` of ``steps`` even steps from ``atan(sigma_max)`` to ``atan(sigma_min)``."""
    if steps == 1:
        return torch.tensor([sigma_max], dtype=torch.float64)
    w = torch.arange(steps, dtype=torch.float64) / (steps - 1)
    return (w * math.atan(sigma_min) + (1 - w) * math.atan(sigma_max)).tan()


class KLOptimal(RangeSchedule):
    """Levels evenly spaced in ``arctan(sigma)`` over the model's range (or the one given)."""

    name: ClassVar[str] = "kl-optimal"

    def formula(self, steps: int, sigma_min: float, sigma_max: float) -> Tensor:
        return kl_optimal_sigmas(steps, sigma_min, sigma_max)
