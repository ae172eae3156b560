"""DPM-Solver++(2M) SDE (k-diffusion's and ComfyUI's ``sample_dpmpp_2m_sde``): the first-order
stochastic exponential-integrator step plus a second-order correction from the previous
prediction in the same direction, in the ``midpoint`` or ``heun`` form.

Native latents and half log-SNR make it one formula for VP, VE and flow. Its zag is the same step
with ``eta = 0``: in the ``midpoint`` form that is DPM-Solver++(2M) exactly, so it inverts as
``dpmpp-2m`` does (second order with upward history, DDIM for an isolated zag).
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
from pydantic import Field
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


class DPMPP2MSDE(Noisy):
    """DPM-Solver++(2M) SDE; ``solver_type`` picks the second-order correction."""

    name: ClassVar[str] = "dpmpp-2m-sde"
    order: ClassVar[int] = 2

    solver_type: Literal["midpoint", "heun"] = Field(
        "midpoint", description="Second-order correction: midpoint | heun."
    )

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
        x0 = pred.x0.to(torch.float64)
        out = exponential_step(x.to(torch.float64), x0, src, dst, h, eta)
        if history is not None:
            r = (src.lam - lam(history.point)) / h
            he = h * (1 + eta)
            if self.solver_type == "heun":
                gain = 1 + math.expm1(-he) / he
            else:
                gain = -0.5 * math.expm1(-he)
            out = out + (dst.alpha * gain / r) * (x0 - history.x0.to(torch.float64))
        if eta > 0 and self.s_noise > 0:
            out = out + sde_noise(ctx, x, dst, h, eta) * self.s_noise
        return cast(out, x.dtype)
