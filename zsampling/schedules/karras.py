"""The ``karras`` schedule (Karras et al., 2022), as k-diffusion's ``get_sigmas_karras``."""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.errors import InvalidArgument
from zsampling.core.model import ModelAdapter
from zsampling.core.schedule import MAX_STEPS


def karras_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> Tensor:
    """Karras et al. (2022) levels, evenly spaced in ``sigma^(1/rho)``, with a final 0 appended."""
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    levels = (hi + ramp * (lo - hi)) ** rho
    return torch.cat([levels, torch.zeros(1, dtype=torch.float64)])


class Karras(Component):
    """Karras et al. (2022) schedule over the model's level range (or the one given)."""

    name: ClassVar[str] = "karras"

    steps: int = Field(25, ge=1, le=MAX_STEPS, description="Number of denoising steps T.")
    rho: float = Field(7.0, gt=0, description="Spacing exponent.")
    sigma_min: float | None = Field(None, gt=0, description="Smallest level; default: the model's.")
    sigma_max: float | None = Field(None, gt=0, description="Largest level; default: the model's.")

    def sigmas(self, model: ModelAdapter) -> Tensor:
        lo, hi = model.sigma_range()
        lo = self.sigma_min if self.sigma_min is not None else lo
        hi = self.sigma_max if self.sigma_max is not None else hi
        if lo >= hi:
            raise InvalidArgument("schedule.sigma_min", lo, f"a level below sigma_max = {hi}")
        return karras_sigmas(self.steps, lo, hi, self.rho)
