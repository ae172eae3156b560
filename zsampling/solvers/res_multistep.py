"""RES multistep (Zhang et al. 2023, "Improved order analysis and design of exponential
integrator for diffusion models", the second-order multistep scheme; ComfyUI's
``res_multistep``)."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from zsampling.solvers.family import Step
from zsampling.solvers.frame import FrameSolver


def phis(z: float) -> tuple[float, float]:
    """``phi_1(z) = (e^z - 1) / z`` and ``phi_2(z) = (phi_1(z) - 1) / z``."""
    phi_1 = math.expm1(z) / z
    return phi_1, (phi_1 - 1.0) / z


class ResMultistep(FrameSolver):
    """An exponential integrator in ``t = -log tau`` for the data prediction: the ``x0`` at this
    level and at the previous one (same direction) with the weights that make the step second
    order for any ratio of step sizes (the "refined" coefficients ``phi_1 - phi_2 / c``,
    ``phi_2 / c``).

    The first step of a path, an isolated zag, and steps touching ``tau = 0`` are first order
    (Euler). Inverts with the same formula on its own history.
    """

    name: ClassVar[str] = "res-multistep"
    order: ClassVar[int] = 2

    def falls_back(self, here: Step) -> bool:
        history = here.history
        return history is None or 0.0 in (here.dst.tau, here.src.tau, history.point.tau)

    def advance(self, here: Step) -> Tensor:
        src, before = here.src, here.history
        assert before is not None  # falls_back took the step without history
        h = math.log(src.tau) - math.log(here.dst.tau)
        c = (math.log(src.tau) - math.log(before.point.tau)) / h
        phi_1, phi_2 = phis(-h)
        b_now, b_before = phi_1 - phi_2 / c, phi_2 / c
        x0_before = before.x0.to(torch.float64)
        return here.land(math.exp(-h) * here.y + h * (b_now * here.x0 + b_before * x0_before))
