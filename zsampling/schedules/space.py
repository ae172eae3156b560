"""A model's own sigma space and training ladder, where ComfyUI-style schedules are defined.

ComfyUI's and k-diffusion's schedules are formulas in the sigma of the model's sampling object:
the level itself for SD-family models (``x = x0 + sigma * eps`` after scaling), but the flow time
``t`` (``x = (1 - t) x0 + t eps``) for SD3 and FLUX. They also read the model's *ladder*: the
ascending levels of its training timesteps, plus two maps between a (fractional) timestep and a
sigma. `SigmaSpace` gathers these for any zsampling model, so a schedule computes in the space its
reference uses and hands back zsampling levels (``t / (1 - t)`` for flow models).

The maps follow ComfyUI's model sampling objects, since that is what its users' schedules walk:

- a DDPM table: ``sigma(ts)`` interpolates log-sigma between the grid's neighbours, and
  ``timestep(sigma)`` is the nearest grid index in log-sigma;
- a flow model with a constant shift ``s`` (SD3): ``sigma(ts) = s u / (1 + (s - 1) u)`` with
  ``u = ts / n`` on ``n`` timesteps and ``timestep(sigma) = n * sigma`` (the timestep the network
  is fed, which is why ``normal`` on SD3 shifts its last level twice, as in ComfyUI);
- a flow model with dynamic shifting (FLUX): ``sigma(ts) = e^mu / (e^mu + 1/ts - 1)`` on a
  10,000-step ladder of ``ts`` in (0, 1], ``timestep(sigma) = sigma`` (ComfyUI's
  ``ModelSamplingFlux`` with ``shift = mu``; ``mu`` from the image size as the pipeline does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import torch
from pydantic import Field
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.errors import InvalidArgument
from zsampling.core.levels import TimestepTable, sigma_from_t, t_from_sigma
from zsampling.core.model import ModelAdapter
from zsampling.core.schedule import MAX_STEPS

#: Ladder length of a dynamically shifted flow model (ComfyUI's ``ModelSamplingFlux``).
FLUX_LADDER = 10_000


class Ladder(Protocol):
    """A model's training levels in its own sigma space, ascending, and the timestep maps."""

    @property
    def sigmas(self) -> Tensor: ...

    def sigma(self, timestep: Tensor) -> Tensor: ...

    def timestep(self, sigma: Tensor) -> Tensor: ...


@dataclass(frozen=True)
class TableLadder:
    """The ladder of a DDPM-style training table (SD, SDXL, k-diffusion's discrete denoisers)."""

    table: TimestepTable

    @property
    def sigmas(self) -> Tensor:
        return self.table.sigmas

    def sigma(self, timestep: Tensor) -> Tensor:
        log = self.table.log_sigmas
        t = timestep.to(torch.float64).clamp(0, len(log) - 1)
        lo, hi = t.floor().long(), t.ceil().long()
        w = t - lo
        return ((1 - w) * log[lo] + w * log[hi]).exp()

    def timestep(self, sigma: Tensor) -> Tensor:
        dist = (sigma.to(torch.float64).log().reshape(1, -1) - self.table.log_sigmas[:, None]).abs()
        return dist.argmin(dim=0).reshape(sigma.shape).to(torch.float64)


@dataclass(frozen=True)
class FlowLadder:
    """The ladder of a flow model: ``n`` shifted times (module docstring for the two shifts)."""

    n: int
    multiplier: float
    shift: float = 1.0
    mu: float | None = None

    def shifted(self, u: Tensor) -> Tensor:
        if self.mu is not None:
            return math.exp(self.mu) / (math.exp(self.mu) + (1.0 / u - 1.0))
        if self.shift == 1.0:
            return u
        return self.shift * u / (1.0 + (self.shift - 1.0) * u)

    @cached_property
    def sigmas(self) -> Tensor:
        ts = torch.arange(1, self.n + 1, dtype=torch.float64) / self.n * self.multiplier
        return self.sigma(ts)

    def sigma(self, timestep: Tensor) -> Tensor:
        return self.shifted(timestep.to(torch.float64) / self.multiplier)

    def timestep(self, sigma: Tensor) -> Tensor:
        return sigma.to(torch.float64) * self.multiplier


def flow_ladder(model: ModelAdapter) -> FlowLadder | None:
    """The ladder of a diffusers flow model, from its scheduler config (None without one)."""
    config = getattr(model, "scheduler_config", None)
    if config is None:
        return None
    if config.get("use_dynamic_shifting", False):
        rule = getattr(model, "dynamic_shift_mu", None)
        if rule is None:
            return None
        return FlowLadder(FLUX_LADDER, 1.0, mu=float(rule(config)))
    n = int(config.get("num_train_timesteps", 1000))
    return FlowLadder(n, float(n), shift=float(config.get("shift", 1.0)))


@dataclass(frozen=True)
class SigmaSpace:
    """Where a model's schedules are computed (module docstring): flow time or the level."""

    flow: bool
    sigma_min: float
    sigma_max: float
    ladder: Ladder | None

    def levels(self, sigmas: Tensor) -> Tensor:
        """zsampling levels (float64) of sigmas in this space, with a zero appended (every
        schedule here ends at sigma 0); a flow time within rounding of 1 is pure noise."""
        s = sigmas.to(torch.float64)
        if self.flow:
            s = sigma_from_t(torch.where(s >= 1.0 - 1e-12, torch.ones_like(s), s))
        return torch.cat([s, torch.zeros(1, dtype=torch.float64)])

    def bounds(self, sigma_min: float | None, sigma_max: float | None) -> tuple[float, float]:
        """The range a schedule spans, in this space: the model's, or the levels given."""
        lo, hi = self.sigma_min, self.sigma_max
        given = [v if v is None or not self.flow else v / (1.0 + v) for v in (sigma_min, sigma_max)]
        lo = given[0] if given[0] is not None else lo
        hi = given[1] if given[1] is not None else hi
        if not 0 < lo < hi:
            shown = sigma_min if sigma_min is not None else lo
            top = sigma_max if sigma_max is not None else hi
            raise InvalidArgument("schedule.sigma_min", shown, f"a level in (0, {top})")
        return lo, hi

    def need_ladder(self, schedule: str) -> Ladder:
        """The ladder, or a clear error for models without a training grid."""
        if self.ladder is None:
            raise InvalidArgument(
                "schedule.use",
                schedule,
                "a model with a training timestep grid (SD, SDXL, SD3, FLUX, a discrete "
                "k-diffusion denoiser); for continuous-level models use 'karras' or 'exponential'",
            )
        return self.ladder


def sigma_space(model: ModelAdapter) -> SigmaSpace:
    """The `SigmaSpace` of a model: its own ladder when it offers one (``sigma_ladder()``, as
    ComfyUI models do), else its table's, else a flow config's, else none; the range is the
    model's ``sigma_range()`` (flow models: their ladder's ends, up to pure noise)."""
    flow = model.process.name == "flow"
    own = getattr(model, "sigma_ladder", None)
    ladder: Ladder | None = own() if own is not None else None
    if ladder is None and model.table is not None:
        ladder = TableLadder(model.table)
    if ladder is None and flow:
        ladder = flow_ladder(model)
    if ladder is not None and flow:  # its top is t = 1, pure noise, which sigma_range leaves out
        ends = ladder.sigmas
        return SigmaSpace(flow, float(ends[0]), float(ends[-1]), ladder)
    lo, hi = model.sigma_range()  # the ladder's ends, unless the model was given other ones
    if flow:
        lo, hi = (float(v) for v in t_from_sigma(torch.tensor([lo, hi], dtype=torch.float64)))
    return SigmaSpace(flow, lo, hi, ladder)


class RangeSchedule(Component):
    """A schedule that is a formula over the model's sigma range, in its sigma space: the
    subclass gives ``formula(steps, sigma_min, sigma_max)``, the levels before the final 0."""

    steps: int = Field(25, ge=1, le=MAX_STEPS, description="Number of denoising steps T.")
    sigma_min: float | None = Field(None, gt=0, description="Smallest level; default: the model's.")
    sigma_max: float | None = Field(None, gt=0, description="Largest level; default: the model's.")

    def formula(self, steps: int, sigma_min: float, sigma_max: float) -> Tensor:
        raise NotImplementedError

    def sigmas(self, model: ModelAdapter) -> Tensor:
        space = sigma_space(model)
        lo, hi = space.bounds(self.sigma_min, self.sigma_max)
        return space.levels(self.formula(self.steps, lo, hi))
