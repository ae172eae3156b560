"""Noise levels: one representation for every model family.

A *level* is k-diffusion's sigma, the noise-to-signal ratio ``s / alpha`` of
``x = alpha * x0 + s * eps``. A *process* says how a model family scales its latents at a level:

===========  ========================  ======================  ==========================
process      alpha(sigma)              s(sigma)                who uses it
===========  ========================  ======================  ==========================
``vp``       1 / sqrt(1 + sigma^2)     sigma * alpha           DDPM / SD / SDXL (diffusers)
``ve``       1                         sigma                   k-diffusion denoisers
``flow``     1 / (1 + sigma)           sigma / (1 + sigma)     rectified flow (SD3, Flux)
===========  ========================  ======================  ==========================

Samplers keep latents in the model's own ("native") space, where the DDIM step between any two
levels is ``x' = alpha_to * x0 + s_to * eps``, downwards (denoise) and upwards (invert) alike.
Pure noise of a flow model is ``sigma = inf`` (alpha = 0, s = 1); the formulas below keep it finite.

Models trained on a discrete timestep grid (DDPM-style) also carry a `TimestepTable`, which maps
levels to the timestep argument the network expects and back.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Literal, NamedTuple

import torch
from torch import Tensor

ProcessName = Literal["vp", "ve", "flow"]


@dataclass(frozen=True)
class Process:
    """How latents are scaled at a level; see the module docstring for the three families."""

    name: ProcessName

    def coefficients(self, sigma: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(alpha, s)`` for float64 ``sigma`` (any shape)."""
        sigma = sigma.to(torch.float64)
        inf = torch.isinf(sigma)
        finite = torch.where(inf, torch.zeros_like(sigma), sigma)
        if self.name == "vp":
            alpha = torch.rsqrt(1.0 + finite**2)
            s = finite * alpha
        elif self.name == "flow":
            alpha = 1.0 / (1.0 + finite)
            s = finite / (1.0 + finite)
        else:
            if bool(inf.any()):
                raise ValueError("a VE process has no finite latent at sigma = inf")
            return torch.ones_like(sigma), sigma
        alpha = torch.where(inf, torch.zeros_like(alpha), alpha)
        s = torch.where(inf, torch.ones_like(s), s)
        return alpha, s

    @property
    def ode(self) -> Literal["sigma", "t"]:
        """The frame k-diffusion-style solvers integrate in (`zsampling.core.solvers.OdeFrame`)."""
        return "t" if self.name == "flow" else "sigma"

    def point(self, sigma: float) -> tuple[float, float]:
        """``(alpha, s)`` of one level, in Python floats (float64): `coefficients` for a single
        level without a dozen tensor kernels (equal to it to within an ulp)."""
        if math.isinf(sigma):
            if self.name == "ve":
                raise ValueError("a VE process has no finite latent at sigma = inf")
            return 0.0, 1.0
        if self.name == "vp":
            alpha = 1.0 / math.sqrt(1.0 + sigma * sigma)
            return alpha, sigma * alpha
        if self.name == "flow":
            return 1.0 / (1.0 + sigma), sigma / (1.0 + sigma)
        return 1.0, sigma

    def init_noise_scale(self, sigma: float) -> float:
        """Standard deviation of the starting noise at level ``sigma``.

        VP and flow latents have (about) unit variance at every level, which is what diffusers
        draws; a VE latent at sigma is ``x0 + sigma * eps`` and k-diffusion draws ``sigma * noise``.
        """
        return float(sigma) if self.name == "ve" else 1.0


def sigma_from_alpha_cumprod(alpha_cumprod: Tensor) -> Tensor:
    """``sigma = sqrt((1 - a) / a)`` for a VP cumulative alpha ``a`` (computed in float64)."""
    a = alpha_cumprod.to(torch.float64)
    return ((1.0 - a) / a).sqrt()


def scaled_linear_alphas_cumprod(
    num_train_timesteps: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012
) -> Tensor:
    """Stable Diffusion's ``scaled_linear`` betas, cumulated exactly as diffusers does (float32).

    Computing in float32 like diffusers keeps our levels bit-identical to a diffusers scheduler's
    ``alphas_cumprod`` (tested), so parity does not depend on rounding luck.
    """
    betas = torch.linspace(beta_start**0.5, beta_end**0.5, num_train_timesteps, dtype=torch.float32)
    return torch.cumprod(1.0 - betas**2, dim=0)


@dataclass(frozen=True)
class TimestepTable:
    """The discrete training grid of a DDPM-style model.

    ``alphas_cumprod[t]`` is the VP cumulative alpha at integer timestep ``t``. ``steps_offset`` and
    ``set_alpha_to_one`` mirror the diffusers scheduler config so that schedules built on this table
    reproduce a diffusers scheduler's timesteps and final level.
    """

    alphas_cumprod: Tensor
    steps_offset: int = 1
    set_alpha_to_one: bool = False

    @property
    def num_train_timesteps(self) -> int:
        return int(self.alphas_cumprod.shape[0])

    @cached_property
    def sigmas(self) -> Tensor:
        """Float64 sigma of every training timestep (ascending in t); computed once."""
        return sigma_from_alpha_cumprod(self.alphas_cumprod)

    @cached_property
    def log_sigmas(self) -> Tensor:
        return self.sigmas.log()

    @cached_property
    def row_levels(self) -> LevelCache:
        """The `LevelCache` of every adapter over this table: a run's levels are most often the
        last run's (the same schedule, image after image), so they are worked out once, not
        once per run (a dozen microseconds per step, a percent of a tiny model's step)."""
        return LevelCache(Process("vp"), self)

    def sigma_at(self, timesteps: Tensor) -> Tensor:
        """Levels of integer timesteps; a negative timestep means the grid's level below ``t=0``.

        Below ``t = 0`` diffusers uses ``alphas_cumprod[0]`` (or 1, i.e. sigma 0, with
        ``set_alpha_to_one``), both for DDIM's final step and DDIM inversion's first source level.
        """
        t = timesteps.to(torch.long)
        below = self.final_sigma()
        sig = self.sigmas[t.clamp(min=0)]
        return torch.where(t < 0, torch.full_like(sig, below), sig)

    def final_sigma(self) -> float:
        """Where DDIM ends: 0 with ``set_alpha_to_one``, else the level of ``alphas_cumprod[0]``."""
        return 0.0 if self.set_alpha_to_one else float(self.sigmas[0])

    @cached_property
    def _grid(self) -> tuple[float, list[float]]:
        """The lowest level and the log-level grid as Python floats (for `timestep_of`)."""
        levels = self.sigmas.tolist()
        return levels[0], [math.log(v) for v in levels]

    def timestep_of(self, sigma: float) -> float:
        """`timestep` of one level, in Python floats: the same interpolation (grid levels give
        exact integers) without a dozen tensor kernels; equal to `timestep` to within an ulp."""
        lowest, grid = self._grid
        log_s = min(math.log(max(sigma, lowest)), grid[-1])
        hi = min(max(bisect.bisect_left(grid, log_s), 1), len(grid) - 1)
        lo = hi - 1
        w = (log_s - grid[lo]) / (grid[hi] - grid[lo])
        return float(hi) if w >= 1.0 else lo + w

    def timestep(self, sigma: Tensor) -> Tensor:
        """Fractional timestep of a level, by linear interpolation in log-sigma.

        Levels that are grid points map back to exact integers; levels outside the grid are clamped
        to its ends (a model is never asked about levels it was not trained on).
        """
        log_grid = self.log_sigmas
        log_s = sigma.to(torch.float64).clamp(min=float(self.sigmas[0])).log()
        log_s = log_s.clamp(max=float(log_grid[-1]))
        hi = torch.searchsorted(log_grid, log_s).clamp(1, len(log_grid) - 1)
        lo = hi - 1
        w = (log_s - log_grid[lo]) / (log_grid[hi] - log_grid[lo])
        return torch.where(w >= 1.0, hi.to(torch.float64), lo.to(torch.float64) + w)


def sigma_from_t(t: Tensor) -> Tensor:
    """Level of a rectified-flow time ``t`` (``x_t = (1 - t) x0 + t eps``): ``t / (1 - t)`` in
    float64, ``inf`` at ``t = 1``."""
    t = t.to(torch.float64)
    one = t >= 1.0
    return torch.where(one, torch.full_like(t, torch.inf), t / torch.where(one, 1.0, 1.0 - t))


def t_from_sigma(sigma: Tensor) -> Tensor:
    """Rectified-flow time of a level: ``sigma / (1 + sigma)`` (1 at ``sigma = inf``)."""
    return Process("flow").coefficients(sigma)[1]


class RowLevels(NamedTuple):
    """The levels of one network call's rows, in the forms an adapter needs them.

    When every row sits at one level (a sampler's usual call), ``shared`` is its ``(alpha, s)``
    pair as floats, the arithmetic uses scalars and ``timesteps`` is one float32 timestep (shape
    ``(1,)``: networks broadcast it over the batch, as they do a pipeline's ``t``). Otherwise
    ``alpha`` and ``s`` are float64 columns shaped to broadcast against the latents, on their
    device, and ``timesteps`` has one entry per row. ``timesteps`` is None without a table.
    """

    alpha: Tensor | None
    s: Tensor | None
    timesteps: Tensor | None
    shared: tuple[float, float] | None


class LevelCache:
    """`RowLevels` for each level (or tuple of levels) asked about, computed once and kept.

    An adapter's own per-call work (the timestep lookup, the coefficients, moving them to the
    device) would otherwise cost a dozen small kernels per call: on a small network that is a
    percent of the call. A call whose rows share one level (a sampler's usual call) is keyed by
    that level, whatever the batch, and costs a few scalar operations the first time; a zigzag
    asks about each level three times. Keys are the levels' exact float64 values, so a hit
    returns exactly what a fresh computation would; past ``limit`` entries the cache starts over.
    """

    def __init__(self, process: Process, table: TimestepTable | None, limit: int = 1024) -> None:
        self.process = process
        self.table = table
        self.limit = limit
        self._rows: dict[tuple[object, torch.device, int], RowLevels] = {}

    def __call__(self, sigma: Tensor, device: torch.device, ndim: int) -> RowLevels:
        levels = sigma.tolist()
        first = levels[0]
        shared = levels.count(first) == len(levels)
        key = (first if shared else tuple(levels), device, ndim)
        hit = self._rows.get(key)
        if hit is not None:
            return hit
        if shared:  # one level for every row: scalar arithmetic
            timesteps = None
            if self.table is not None:
                t = self.table.timestep_of(first)
                timesteps = torch.full((1,), t, dtype=torch.float32, device=device)
            hit = RowLevels(None, None, timesteps, self.process.point(first))
        else:
            shape = (len(levels),) + (1,) * (ndim - 1)
            sigma64 = sigma.to(torch.float64)
            a64, s64 = self.process.coefficients(sigma64)
            timesteps = None
            if self.table is not None:
                timesteps = self.table.timestep(sigma64).to(device=device, dtype=torch.float32)
            hit = RowLevels(a64.view(shape).to(device), s64.view(shape).to(device), timesteps, None)
        if len(self._rows) >= self.limit:
            self._rows.clear()
        self._rows[key] = hit
        return hit
