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

from zsampling.core.solvers import LevelPoint, StepContext
from zsampling.solvers.multistep_sde import MultistepSDE
from zsampling.solvers.stochastic import lam


class DPMPP3MSDE(MultistepSDE):
    """DPM-Solver++(3M) SDE."""

    name: ClassVar[str] = "dpmpp-3m-sde"
    order: ClassVar[int] = 3

    def correction(
        self, x0: Tensor, src: LevelPoint, dst: LevelPoint, h: float, eta: float, ctx: StepContext
    ) -> Tensor | None:
        earlier = ctx.history[:2]
        if not earlier:
            return None
        he = h * (1 + eta)
        phi_2 = math.expm1(-he) / he + 1
        r0 = (src.lam - lam(earlier[0].point)) / h
        d1_0 = (x0 - earlier[0].x0.to(torch.float64)) / r0
        if len(earlier) == 1:
            return (dst.alpha * phi_2) * d1_0
        r1 = (lam(earlier[0].point) - lam(earlier[1].point)) / h
        d1_1 = (earlier[0].x0.to(torch.float64) - earlier[1].x0.to(torch.float64)) / r1
        d1 = d1_0 + (d1_0 - d1_1) * (r0 / (r0 + r1))
        d2 = (d1_0 - d1_1) / (r0 + r1)
        phi_3 = phi_2 / he - 0.5
        return dst.alpha * (phi_2 * d1 - phi_3 * d2)
