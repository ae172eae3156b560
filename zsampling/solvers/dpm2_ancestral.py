"""DPM-Solver-2 ancestral: a second-order step (Euler to the geometric midpoint, the slope there
for the whole step) down to ``down``, then fresh noise (k-diffusion's ``sample_dpm_2_ancestral``,
ComfyUI's rectified-flow form for flow models).

Its zag is the same step with ``eta = 0``: deterministic DPM-Solver-2 from the lower level up.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from zsampling.core.prediction import Prediction
from zsampling.core.solvers import History, LevelPoint, StepContext, ddim_step, from_frame, to_frame
from zsampling.solvers.stochastic import (
    Noisy,
    Split,
    ancestral_split,
    first_order_only,
    frame_point,
    fresh,
)


class DPM2Ancestral(Noisy):
    """DPM-Solver-2 with ancestral noise; two model calls per step (one into sigma 0)."""

    name: ClassVar[str] = "dpm2-ancestral"
    order: ClassVar[int] = 2

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
        noisy = ctx.direction == "denoise"
        split = ancestral_split(src, dst, self.eta) if noisy else Split(dst.tau, 0.0, 1.0)
        if split.down == 0:
            return ddim_step(x, pred, dst)
        y = to_frame(x, src)
        d = (y - pred.x0.to(torch.float64)) / src.tau
        mid = frame_point(math.sqrt(src.tau * split.down), src, ctx)
        y_mid = y + d * (mid.tau - src.tau)
        second = ctx.evaluate(from_frame(y_mid, mid, x.dtype), mid.sigma)
        d_mid = (y_mid - second.x0.to(torch.float64)) / mid.tau
        y = split.gain * (y + d_mid * (split.down - src.tau))
        if noisy and self.adds_noise:
            y = y + fresh(ctx, x) * (self.s_noise * split.up)
        return from_frame(y, dst, x.dtype)
