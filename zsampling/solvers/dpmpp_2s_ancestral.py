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

from zsampling.core.solvers import LevelPoint, from_frame
from zsampling.solvers.ancestral import Ancestral
from zsampling.solvers.family import Step
from zsampling.solvers.frame import frame_point

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


class DPMPP2SAncestral(Ancestral):
    """DPM-Solver++(2S) with ancestral noise; two model calls per step (one into sigma 0)."""

    name: ClassVar[str] = "dpmpp-2s-ancestral"
    order: ClassVar[int] = 2

    def move(self, here: Step, y: Tensor, x0: Tensor, down: float) -> Tensor:
        src = here.src
        mid = frame_point(log_snr_midpoint(src, down), src, here.ctx)
        ratio = mid.tau / src.tau
        y_mid = ratio * y + (1 - ratio) * x0
        second = here.ctx.evaluate(from_frame(y_mid, mid, here.x.dtype), mid.sigma).x0
        ratio = down / src.tau
        return ratio * y + (1 - ratio) * second.to(torch.float64)
