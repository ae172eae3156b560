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

from zsampling.core.component import Component
from zsampling.core.model import ModelAdapter
from zsampling.core.schedule import MAX_STEPS
from zsampling.schedules.space import sigma_space


def polyexponential_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float) -> Tensor:
    """``exp(log sigma_min + r^rho (log sigma_max - log sigma_min))`` for ``r`` from 1 down to 0
    in ``steps`` even steps (no final 0)."""
    ramp = torch.linspace(1, 0, steps, dtype=torch.float64) ** rho
    lo, hi = math.log(sigma_min), math.log(sigma_max)
    return (lo + ramp * (hi - lo)).exp()


class Exponential(Component):
    """Levels evenly spaced in log-sigma over the model's range (or the one given)."""

    name: ClassVar[str] = "exponential"

    steps: int = Field(25, ge=1, le=MAX_STEPS, description="Number of denoising steps T.")
    sigma_min: float | None = Field(None, gt=0, description="Smallest level; default: the model's.")
    sigma_max: float | None = Field(None, gt=0, description="Largest level; default: the model's.")

    def sigmas(self, model: ModelAdapter) -> Tensor:
        space = sigma_space(model)
        lo, hi = space.bounds(self.sigma_min, self.sigma_max)
        return space.levels(polyexponential_sigmas(self.steps, lo, hi, 1.0))


class PolyExponential(Component):
    """Levels on a polynomial (power ``rho``) ramp in log-sigma over the model's range."""

    name: ClassVar[str] = "polyexponential"

    steps: int = Field(25, ge=1, le=MAX_STEPS, description="Number of denoising steps T.")
    rho: float = Field(1.0, gt=0, description="Ramp power (1 = exponential).")
    sigma_min: float | None = Field(None, gt=0, description="Smallest level; default: the model's.")
    sigma_max: float | None = Field(None, gt=0, description="Largest level; default: the model's.")

    def sigmas(self, model: ModelAdapter) -> Tensor:
        space = sigma_space(model)
        lo, hi = space.bounds(self.sigma_min, self.sigma_max)
        return space.levels(polyexponential_sigmas(self.steps, lo, hi, self.rho))
