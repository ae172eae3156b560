"""Heun's method (Karras et al. 2022, Algorithm 1 without churn; k-diffusion ``sample_heun``)."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.prediction import Prediction
from zsampling.core.solvers import History, LevelPoint, StepContext, from_frame, to_frame
from zsampling.solvers.frame import euler, slope


class Heun(Component):
    """The trapezoidal rule on the frame ODE: an Euler trial step to ``dst``, one more model call
    there, and the step again with the mean of both derivatives (two calls per step).

    A step into sigma 0 is plain Euler (the derivative is not defined at ``tau = 0`` for the
    second call), as in k-diffusion. The same formula runs upwards: an inversion step evaluates
    the model at its higher target level, so Heun inverts with second-order accuracy and needs no
    history (a zag is as accurate as a denoise).
    """

    name: ClassVar[str] = "heun"
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
        if dst.tau == 0.0:
            return euler(x, pred, src, dst)
        y, d = to_frame(x, src), slope(pred, src)
        dt = dst.tau - src.tau
        trial = y + d * dt
        second = ctx.evaluate(from_frame(trial, dst, x.dtype), dst.sigma)
        return from_frame(y + (d + slope(second, dst)) * (dt / 2.0), dst, x.dtype)
