"""The DPM-Solver++ multistep SDE frame shared by ``dpmpp-2m-sde`` and ``dpmpp-3m-sde``: the
first-order stochastic exponential-integrator step on native latents, a correction from the
same-direction history, the step's noise."""

from __future__ import annotations

import torch
from torch import Tensor

from zsampling.core.casts import cast
from zsampling.core.prediction import Prediction
from zsampling.core.solvers import History, LevelPoint, StepContext, ddim_step
from zsampling.solvers.brownian import SDENoisy
from zsampling.solvers.stochastic import exponential_step, finite, first_order_only, sde_noise


class MultistepSDE(SDENoisy):
    """The DPM-Solver++ multistep SDE frame (a base class, not a registered solver): the
    first-order stochastic step plus the subclass's `correction` from the same-direction history,
    then the step's noise. A zag is the same with ``eta = 0``."""

    def correction(
        self, x0: Tensor, src: LevelPoint, dst: LevelPoint, h: float, eta: float, ctx: StepContext
    ) -> Tensor | None:
        """What the earlier predictions add to the step (None: nothing)."""
        raise NotImplementedError

    def step(
        self,
        x: Tensor,
        pred: Prediction,
        src: LevelPoint,
        dst: LevelPoint,
        history: History | None,
        ctx: StepContext,
    ) -> Tensor:
        if first_order_only(src, dst):
            return ddim_step(x, pred, dst)
        src = finite(src, ctx)
        eta = self.eta if ctx.direction == "denoise" else 0.0
        h = dst.lam - src.lam
        x0 = pred.x0.to(torch.float64)
        out = exponential_step(x.to(torch.float64), x0, src, dst, h, eta)
        extra = self.correction(x0, src, dst, h, eta, ctx)
        if extra is not None:
            out = out + extra
        if eta > 0 and self.s_noise > 0:
            z = self.draw(ctx, x, src, src.tau, dst.tau)
            out = out + sde_noise(z, dst, h, eta) * self.s_noise
        return cast(out, x.dtype)
