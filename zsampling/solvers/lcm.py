"""LCM multistep sampling (ComfyUI's ``sample_lcm``, diffusers' ``LCMScheduler``): a consistency
model's ``x0`` is taken as the answer, then noised afresh to the next level,
``x' = alpha_dst x0 + s_dst z``.

Its zag is DDIM: the same move with the prediction's own ``eps`` in place of fresh noise.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from zsampling.core.casts import cast
from zsampling.core.component import Component
from zsampling.core.prediction import Prediction
from zsampling.core.solvers import History, LevelPoint, StepContext, ddim_step
from zsampling.solvers.stochastic import deterministic, fresh


class LCM(Component):
    """Latent consistency model sampling: predict ``x0``, renoise to the next level."""

    name: ClassVar[str] = "lcm"
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
        if deterministic(ctx, dst):
            return ddim_step(x, pred, dst)
        out = dst.alpha * pred.x0.to(torch.float64) + dst.s * fresh(ctx, x)
        return cast(out, x.dtype)
