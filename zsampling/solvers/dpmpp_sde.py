"""DPM-Solver++ SDE: the single-step second-order stochastic solver (k-diffusion's and ComfyUI's
``sample_dpmpp_sde``): an ancestral first-order step to the log-SNR point ``r`` of the way, a
model call there, then an ancestral step over the whole interval with the two predictions mixed.

Written on native latents with half log-SNR ``lambda``, so it is the same formula for VP, VE and
flow models. Its zag is the same step with ``eta = 0`` (deterministic, from the lower level up).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from pydantic import Field
from torch import Tensor

from zsampling.core.casts import cast
from zsampling.core.solvers import LevelPoint, StepContext
from zsampling.solvers.brownian import SDENoisy
from zsampling.solvers.family import Step
from zsampling.solvers.stochastic import finite, sigma_split


class DPMPPSDE(SDENoisy):
    """DPM-Solver++ (stochastic, single-step); two model calls per step (one into sigma 0)."""

    name: ClassVar[str] = "dpmpp-sde"
    order: ClassVar[int] = 2

    r: float = Field(0.5, gt=0, lt=1, description="Where the middle evaluation sits, in log-SNR.")

    def advance(self, here: Step) -> Tensor:
        ctx, x, x0, dst = here.ctx, here.x, here.x0, here.dst
        src, eta = finite(here.src, ctx), self.eta_for(ctx)
        h = dst.lam - src.lam
        mid = ctx.point(math.exp(-(src.lam + self.r * h)))
        x64 = x.to(torch.float64)
        x_mid = self._move(x64, x0, src, mid, eta, ctx)
        second = ctx.evaluate(cast(x_mid, x.dtype), mid.sigma).x0.to(torch.float64)
        fac = 1 / (2 * self.r)
        mixed = (1 - fac) * x0 + fac * second
        return cast(self._move(x64, mixed, src, dst, eta, ctx), x.dtype)

    def _move(
        self,
        x: Tensor,
        x0: Tensor,
        src: LevelPoint,
        dst: LevelPoint,
        eta: float,
        ctx: StepContext,
    ) -> Tensor:
        """An ancestral exponential-integrator step from ``src`` to ``dst`` in native space: the
        deterministic step to the split's lower level ``down``, then ``alpha_dst * up`` noise."""
        down, up = sigma_split(src.sigma, dst.sigma, eta)
        decay = down / src.sigma  # e^{-h'} with h' the log-SNR step to `down`
        out = (dst.alpha / src.alpha) * decay * x + dst.alpha * (1 - decay) * x0
        if eta > 0 and self.s_noise > 0:
            z = self.draw(ctx, x, src, src.tau, dst.tau)
            out = out + z * (dst.alpha * self.s_noise * up)
        return out
