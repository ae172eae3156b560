"""RES multistep (Zhang et al. 2023, "Improved order analysis and design of exponential
integrator for diffusion models", the second-order multistep scheme; ComfyUI's
``res_multistep``)."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.prediction import Prediction
from zsampling.core.solvers import History, LevelPoint, StepContext, from_frame, to_frame
from zsampling.solvers.frame import euler


def phis(z: float) -> tuple[float, float]:
    """``phi_1(z) = (e^z - 1) / z`` and ``phi_2(z) = (phi_1(z) - 1) / z``."""
    phi_1 = math.expm1(z) / z
    return phi_1, (phi_1 - 1.0) / z


class ResMultistep(Component):
    """An exponential integrator in ``t = -log tau`` for the data prediction: the ``x0`` at this
    level and at the previous one (same direction) with the weights that make the step second
    order for any ratio of step sizes (the "refined" coefficients ``phi_1 - phi_2 / c``,
    ``phi_2 / c``).

    The first step of a path, an isolated zag, and steps touching ``tau = 0`` are first order
    (Euler). Inverts with the same formula on its own history.
    """

    name: ClassVar[str] = "res-multistep"
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
        if history is None or 0.0 in (dst.tau, src.tau, history.point.tau):
            return euler(x, pred, src, dst)
        h = math.log(src.tau) - math.log(dst.tau)
        c = (math.log(src.tau) - math.log(history.point.tau)) / h
        phi_1, phi_2 = phis(-h)
        b_now, b_before = phi_1 - phi_2 / c, phi_2 / c
        y = math.exp(-h) * to_frame(x, src) + h * (
            b_now * pred.x0.to(torch.float64) + b_before * history.x0.to(torch.float64)
        )
        return from_frame(y, dst, x.dtype)
