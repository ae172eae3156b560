"""Euler ancestral: an Euler step down to ``down``, then fresh noise back up to the target level
(k-diffusion's ``sample_euler_ancestral``; ComfyUI's rectified-flow form for flow models).

Its zag is DDIM, the deterministic Euler step it is built on.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from zsampling.core.prediction import Prediction
from zsampling.core.solvers import History, LevelPoint, StepContext, ddim_step, from_frame, to_frame
from zsampling.solvers.stochastic import (
    Noisy,
    ancestral_split,
    deterministic,
    first_order_only,
    fresh,
)


class EulerAncestral(Noisy):
    """Euler ancestral sampling with ``eta`` (share of fresh noise) and ``s_noise`` (its scale)."""

    name: ClassVar[str] = "euler-ancestral"
    order: ClassVar[int] = 1

    def step(
        self,
        x: Tensor,
        pred: Prediction,
        src: LevelPoint,
        dst: LevelPoint,
        history: History | None,
        ctx: StepContext,
    ) -> Tensor:
        if deterministic(ctx, dst) or first_order_only(src, dst):
            return ddim_step(x, pred, dst)
        split = ancestral_split(src, dst, self.eta)
        y = to_frame(x, src)
        x0 = pred.x0.to(torch.float64)
        ratio = split.down / src.tau
        y = split.gain * (ratio * y + (1 - ratio) * x0)
        if self.adds_noise:
            y = y + fresh(ctx, x) * (self.s_noise * split.up)
        return from_frame(y, dst, x.dtype)
