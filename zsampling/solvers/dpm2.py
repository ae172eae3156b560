"""k-diffusion's DPM-Solver-2 (``sample_dpm_2``): the midpoint method in the frame, with the
midpoint at the geometric mean of the two frame times (Karras et al. 2022's take on Lu et al.'s
DPM-Solver-2)."""

from __future__ import annotations

import math
from typing import ClassVar

from torch import Tensor

from zsampling.solvers.family import Step
from zsampling.solvers.frame import FrameSolver, slope


class DPM2(FrameSolver):
    """A half step (in log frame time) with Euler, one more model call there, and the whole step
    with that midpoint derivative (two calls per step).

    A step into or out of ``tau = 0`` has no geometric midpoint and is Euler: the final denoise
    (as in k-diffusion) and, upwards, the first step of an inversion from the clean end. Every
    other step inverts with the same formula, second order, without history.
    """

    name: ClassVar[str] = "dpm2"
    order: ClassVar[int] = 2

    def falls_back(self, here: Step) -> bool:
        return here.dst.tau == 0.0 or here.src.tau == 0.0

    def advance(self, here: Step) -> Tensor:
        src, dst = here.src, here.dst
        y, d = here.y, slope(here.pred, src)
        tau_mid = math.exp((math.log(src.tau) + math.log(dst.tau)) / 2.0)
        mid, point = self.evaluate_at(here, y + d * (tau_mid - src.tau), tau_mid)
        return here.land(y + slope(mid, point) * (dst.tau - src.tau))
