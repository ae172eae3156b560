"""The DPM-Solver++ multistep SDE frame shared by ``dpmpp-2m-sde`` and ``dpmpp-3m-sde``: the
first-order stochastic exponential-integrator step on native latents, a correction from the
same-direction history, the step's noise."""

from __future__ import annotations

import torch
from torch import Tensor

from zsampling.core.casts import cast
from zsampling.core.solvers import LevelPoint, StepContext
from zsampling.solvers.brownian import SDENoisy
from zsampling.solvers.family import Step
from zsampling.solvers.stochastic import exponential_step, finite, sde_noise


class MultistepSDE(SDENoisy):
    """The DPM-Solver++ multistep SDE frame (a base class, not a registered solver): the
    first-order stochastic step plus the subclass's `correction` from the same-direction history,
    then the step's noise. A zag is the same with ``eta = 0``."""

    def correction(
        self, x0: Tensor, src: LevelPoint, dst: LevelPoint, h: float, eta: float, ctx: StepContext
    ) -> Tensor | None:
        """What the earlier predictions add to the step (None: nothing)."""
        raise NotImplementedError

    def advance(self, here: Step) -> Tensor:
        ctx, x, x0, dst = here.ctx, here.x, here.x0, here.dst
        src, eta = finite(here.src, ctx), self.eta_for(ctx)
        h = dst.lam - src.lam
        out = exponential_step(x.to(torch.float64), x0, src, dst, h, eta)
        extra = self.correction(x0, src, dst, h, eta, ctx)
        if extra is not None:
            out = out + extra
        if eta > 0 and self.s_noise > 0:
            z = self.draw(ctx, x, src, src.tau, dst.tau)
            out = out + sde_noise(z, dst, h, eta) * self.s_noise
        return cast(out, x.dtype)
