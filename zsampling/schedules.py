"""Schedules: the levels a run walks through, as a float64 sigma tensor (first level noisiest).

Timestep spacings follow diffusers' schedulers (tested against them); Karras follows
k-diffusion's ``get_sigmas_karras``. A schedule that ends above sigma 0 (DDIM's
``set_alpha_to_one = False``) leaves the last bit of noise in, exactly as diffusers does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal, Protocol, runtime_checkable

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from zsampling.errors import InvalidArgument
from zsampling.levels import TimestepTable

if TYPE_CHECKING:
    from zsampling.adapters.base import ModelAdapter

Spacing = Literal["leading", "trailing", "linspace"]


@runtime_checkable
class Schedule(Protocol):
    """``sigmas(model)``: ``steps + 1`` strictly decreasing levels for this model."""

    name: ClassVar[str]

    @property
    def steps(self) -> int: ...

    def sigmas(self, model: ModelAdapter) -> Tensor: ...


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


class Uniform(BaseModel):
    """Evenly spaced training timesteps (diffusers' DDIM/Euler/DPM-Solver ``timestep_spacing``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: ClassVar[str] = "uniform"

    steps: int = Field(50, ge=1, description="Number of denoising steps T.")
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


def karras_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> Tensor:
    """Karras et al. (2022) levels, evenly spaced in ``sigma^(1/rho)``, with a final 0 appended."""
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    levels = (hi + ramp * (lo - hi)) ** rho
    return torch.cat([levels, torch.zeros(1, dtype=torch.float64)])


class Karras(BaseModel):
    """Karras et al. (2022) schedule over the model's level range (or the one given)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: ClassVar[str] = "karras"

    steps: int = Field(25, ge=1, description="Number of denoising steps T.")
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
