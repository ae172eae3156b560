"""LCM multistep sampling (ComfyUI's ``sample_lcm``, diffusers' ``LCMScheduler``): a consistency
model's ``x0`` is taken as the answer, then noised afresh to the next level,
``x' = alpha_dst x0 + s_dst z``.

Its zag is DDIM: the same move with the prediction's own ``eps`` in place of fresh noise.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from zsampling.core.casts import cast
from zsampling.solvers.family import Step
from zsampling.solvers.stochastic import Stochastic, deterministic, fresh


class LCM(Stochastic):
    """Latent consistency model sampling: predict ``x0``, renoise to the next level."""

    name: ClassVar[str] = "lcm"
    order: ClassVar[int] = 1

    def falls_back(self, here: Step) -> bool:
        return deterministic(here.ctx, here.dst)

    def advance(self, here: Step) -> Tensor:
        out = here.dst.alpha * here.x0 + here.dst.s * fresh(here.ctx, here.x)
        return cast(out, here.x.dtype)
