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

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

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
