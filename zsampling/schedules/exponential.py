"""The ``exponential`` and ``polyexponential`` schedules, as k-diffusion's ``get_sigmas_*``.

``exponential`` spaces the levels evenly in log-sigma from the model's largest to its smallest;
``polyexponential`` bends that ramp by a power ``rho`` (``rho = 1`` is ``exponential``). Both are
computed in the model's sigma space (`zsampling.schedules.space`), as ComfyUI does, and end at 0.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from pydantic import Field
from torch import Tensor

from zsampling.schedules.space import RangeSchedule


def polyexponential_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float) -> Tensor:
    """``exp(log sigma_min + r^rho (log sigma_max - log sigma_min))`` for ``r`` from 1 down to 0
    in ``steps`` even steps (no final 0)."""
    ramp = torch.linspace(1, 0, steps, dtype=torch.float64) ** rho
    lo, hi = math.log(sigma_min), math.log(sigma_max)
    return (lo + ramp * (hi - lo)).exp()


class Exponential(RangeSchedule):
    """Levels evenly spaced in log-sigma over the model's range (or the one given)."""

    name: ClassVar[str] = "exponential"

    def formula(self, steps: int, sigma_min: float, sigma_max: float) -> Tensor:
        return polyexponential_sigmas(steps, sigma_min, sigma_max, 1.0)


class PolyExponential(RangeSchedule):
    """Levels on a polynomial (power ``rho``) ramp in log-sigma over the model's range."""

    name: ClassVar[str] = "polyexponential"

    rho: float = Field(1.0, gt=0, description="Ramp power (1 = exponential).")

    def formula(self, steps: int, sigma_min: float, sigma_max: float) -> Tensor:
        return polyexponential_sigmas(steps, sigma_min, sigma_max, self.rho)
