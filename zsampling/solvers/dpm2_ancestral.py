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

from zsampling.core.solvers import from_frame
from zsampling.solvers.ancestral import Ancestral
from zsampling.solvers.family import Step
from zsampling.solvers.frame import frame_point


class DPM2Ancestral(Ancestral):
    """DPM-Solver-2 with ancestral noise; two model calls per step (one into sigma 0)."""

    name: ClassVar[str] = "dpm2-ancestral"
    order: ClassVar[int] = 2
    noise_without_down: ClassVar[bool] = False

    def move(self, here: Step, y: Tensor, x0: Tensor, down: float) -> Tensor:
        src = here.src
        d = (y - x0) / src.tau
        mid = frame_point(math.sqrt(src.tau * down), src, here.ctx)
        y_mid = y + d * (mid.tau - src.tau)
        second = here.ctx.evaluate(from_frame(y_mid, mid, here.x.dtype), mid.sigma)
        d_mid = (y_mid - second.x0.to(torch.float64)) / mid.tau
        return y + d_mid * (down - src.tau)
