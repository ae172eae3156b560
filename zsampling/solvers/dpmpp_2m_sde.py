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

from zsampling.core.solvers import LevelPoint, StepContext
from zsampling.solvers.multistep_sde import MultistepSDE
from zsampling.solvers.stochastic import lam


class DPMPP2MSDE(MultistepSDE):
    """DPM-Solver++(2M) SDE; ``solver_type`` picks the second-order correction."""

    name: ClassVar[str] = "dpmpp-2m-sde"
    order: ClassVar[int] = 2

    solver_type: Literal["midpoint", "heun"] = Field(
        "midpoint", description="Second-order correction: midpoint | heun."
    )

    def correction(
        self, x0: Tensor, src: LevelPoint, dst: LevelPoint, h: float, eta: float, ctx: StepContext
    ) -> Tensor | None:
        if not ctx.history:
            return None
        previous = ctx.history[0]
        r = (src.lam - lam(previous.point)) / h
        he = h * (1 + eta)
        gain = 1 + math.expm1(-he) / he if self.solver_type == "heun" else -0.5 * math.expm1(-he)
        return (dst.alpha * gain / r) * (x0 - previous.x0.to(torch.float64))
