"""Heun's method (Karras et al. 2022, Algorithm 1 without churn; k-diffusion ``sample_heun``)."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from zsampling.solvers.family import Step
from zsampling.solvers.frame import FrameSolver, slope


class Heun(FrameSolver):
    """The trapezoidal rule on the frame ODE: an Euler trial step to ``dst``, one more model call
    there, and the step again with the mean of both derivatives (two calls per step).

    A step into sigma 0 is plain Euler (the derivative is not defined at ``tau = 0`` for the
    second call), as in k-diffusion. The same formula runs upwards: an inversion step evaluates
    the model at its higher target level, so Heun inverts with second-order accuracy and needs no
    history (a zag is as accurate as a denoise).
    """

    name: ClassVar[str] = "heun"
    order: ClassVar[int] = 2

    def advance(self, here: Step) -> Tensor:
        src, dst = here.src, here.dst
        y, d = here.y, slope(here.pred, src)
        dt = dst.tau - src.tau
        second = here.ctx.evaluate(here.land(y + d * dt), dst.sigma)
        return here.land(y + (d + slope(second, dst)) * (dt / 2.0))
