"""DPM-Solver++(3M) SDE (k-diffusion's and ComfyUI's ``sample_dpmpp_3m_sde``): the first-order
stochastic exponential-integrator step plus first and second divided differences of the last
three predictions in the same direction (second order after one step, third after two).

Native latents and half log-SNR make it one formula for VP, VE and flow. Its zag is the same step
with ``eta = 0`` (deterministic DPM-Solver++(3M) with upward history; DDIM for an isolated zag).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from zsampling.core.casts import cast
from zsampling.core.prediction import Prediction
from zsampling.core.solvers import History, LevelPoint, StepContext, ddim_step
from zsampling.solvers.stochastic import (
    Noisy,
    exponential_step,
    finite,
    first_order_only,
    lam,
    sde_noise,
)


class DPMPP3MSDE(Noisy):
    """DPM-Solver++(3M) SDE."""

    name: ClassVar[str] = "dpmpp-3m-sde"
    order: ClassVar[int] = 3

    def step(
        self,
        x: Tensor,
        pred: Prediction,
        src: LevelPoint,
        dst: LevelPoint,
        history: History | None,
        ctx: StepContext,
    ) -> Tensor:
        if first_order_only(src, dst):
            return ddim_step(x, pred, dst)
        src = finite(src, ctx)
        eta = self.eta if ctx.direction == "denoise" else 0.0
        h = dst.lam - src.lam
        he = h * (1 + eta)
        x0 = pred.x0.to(torch.float64)
        out = exponential_step(x.to(torch.float64), x0, src, dst, h, eta)
        phi_2 = math.expm1(-he) / he + 1
        earlier = ctx.history[:2]
        if earlier:
            r0 = (src.lam - lam(earlier[0].point)) / h
            d1_0 = (x0 - earlier[0].x0.to(torch.float64)) / r0
            if len(earlier) == 1:
                out = out + (dst.alpha * phi_2) * d1_0
            else:
                r1 = (lam(earlier[0].point) - lam(earlier[1].point)) / h
                d1_1 = (earlier[0].x0.to(torch.float64) - earlier[1].x0.to(torch.float64)) / r1
                d1 = d1_0 + (d1_0 - d1_1) * (r0 / (r0 + r1))
                d2 = (d1_0 - d1_1) / (r0 + r1)
                phi_3 = phi_2 / he - 0.5
                out = out + dst.alpha * (phi_2 * d1 - phi_3 * d2)
        if eta > 0 and self.s_noise > 0:
            out = out + sde_noise(ctx, x, dst, h, eta) * self.s_noise
        return cast(out, x.dtype)
