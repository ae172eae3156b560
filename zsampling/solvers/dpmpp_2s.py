"""Single-step DPM-Solver++(2S) (Lu et al. 2022, data prediction), deterministic: k-diffusion's
``sample_dpmpp_2s_ancestral`` with ``eta = 0``, and ComfyUI's rectified-flow form of it."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from zsampling.core.solvers import LevelPoint, from_frame
from zsampling.solvers.family import Step
from zsampling.solvers.frame import FrameSolver


def _toward(y: Tensor, x0: Tensor, src: LevelPoint, tau: float) -> Tensor:
    """The first-order data-prediction step in the frame: ``(tau / tau_src) y + (1 - ...) x0``."""
    ratio = tau / src.tau
    return ratio * y + (1.0 - ratio) * x0


class DPMSolverPP2S(FrameSolver):
    """Two stages per step: a first-order step to the half-way level in log-SNR
    (``lambda = log(alpha / s)``, so sigma_mid = sqrt(sigma_src * sigma_dst) for every process),
    a model call there, and the whole first-order step with that midpoint's ``x0``.

    The first-order step ``(tau'/tau) y + (1 - tau'/tau) x0`` is the frame's Euler step, so in the
    sigma frame this is k-diffusion's formula and in the t frame ComfyUI's flow one. Steps with an
    infinite log-SNR at either end (into sigma 0, out of sigma 0 when inverting, or out of a flow
    model's pure noise) have no midpoint and are first order (ComfyUI evaluates pure noise again at
    ``t = 0.9999`` instead). Otherwise it inverts with the same formula, no history needed.
    """

    name: ClassVar[str] = "dpmpp-2s"
    order: ClassVar[int] = 2

    def falls_back(self, here: Step) -> bool:
        return not (math.isfinite(here.src.lam) and math.isfinite(here.dst.lam))

    def advance(self, here: Step) -> Tensor:
        src = here.src
        mid = here.ctx.point(math.sqrt(src.sigma * here.dst.sigma))
        y = here.y
        first = from_frame(_toward(y, here.x0, src, mid.tau), mid, here.x.dtype)
        second = here.ctx.evaluate(first, mid.sigma)
        return here.land(_toward(y, second.x0.to(torch.float64), src, here.dst.tau))
