"""DPM-Solver++(2S) ancestral: a single-step second-order data-prediction step down to ``down``
(a first-order step to the log-SNR midpoint, then the whole step with the prediction made
there), then fresh noise (k-diffusion's ``sample_dpmpp_2s_ancestral``, ComfyUI's
rectified-flow form for flow models).

Its zag is the same step with ``eta = 0``: deterministic DPM-Solver++(2S) from the lower level up.
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

FLOW_FIRST_MID = 0.9999
"""The midpoint ``t`` of a flow step from pure noise (``t = 1``, where log-SNR is -inf), as
ComfyUI takes it."""


def log_snr_midpoint(src: LevelPoint, down: float) -> float:
    """The frame time halfway in half log-SNR between the source and ``down``."""
    if src.ode != "t":
        return math.sqrt(src.tau * down)
    if src.tau >= 1:
        return FLOW_FIRST_MID
    lam_src, lam_down = math.log((1 - src.tau) / src.tau), math.log((1 - down) / down)
    return 1 / (1 + math.exp((lam_src + lam_down) / 2))


class DPMPP2SAncestral(Noisy):
    """DPM-Solver++(2S) with ancestral noise; two model calls per step (one into sigma 0)."""

    name: ClassVar[str] = "dpmpp-2s-ancestral"
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
        x0 = pred.x0.to(torch.float64)
        mid = frame_point(log_snr_midpoint(src, split.down), src, ctx)
        ratio = mid.tau / src.tau
        y_mid = ratio * y + (1 - ratio) * x0
        second = ctx.evaluate(from_frame(y_mid, mid, x.dtype), mid.sigma).x0.to(torch.float64)
        ratio = split.down / src.tau
        y = split.gain * (ratio * y + (1 - ratio) * second)
        if noisy and dst.sigma > 0 and self.adds_noise:
            y = y + fresh(ctx, x) * (self.s_noise * split.up)
        return from_frame(y, dst, x.dtype)
