"""k-diffusion's DPM-Solver-2 (``sample_dpm_2``): the midpoint method in the frame, with the
midpoint at the geometric mean of the two frame times (Karras et al. 2022's take on Lu et al.'s
DPM-Solver-2)."""

from __future__ import annotations

import math
from typing import ClassVar

from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.prediction import Prediction
from zsampling.core.solvers import History, LevelPoint, StepContext, from_frame, to_frame
from zsampling.solvers.frame import euler, evaluate_at_tau, slope


class DPM2(Component):
    """A half step (in log frame time) with Euler, one more model call there, and the whole step
    with that midpoint derivative (two calls per step).

    A step into or out of ``tau = 0`` has no geometric midpoint and is Euler: the final denoise
    (as in k-diffusion) and, upwards, the first step of an inversion from the clean end. Every
    other step inverts with the same formula, second order, without history.
    """

    name: ClassVar[str] = "dpm2"
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
        if dst.tau == 0.0 or src.tau == 0.0:
            return euler(x, pred, src, dst)
        y, d = to_frame(x, src), slope(pred, src)
        tau_mid = math.exp((math.log(src.tau) + math.log(dst.tau)) / 2.0)
        mid, point = evaluate_at_tau(ctx, y + d * (tau_mid - src.tau), tau_mid, src, x.dtype)
        return from_frame(y + slope(mid, point) * (dst.tau - src.tau), dst, x.dtype)
