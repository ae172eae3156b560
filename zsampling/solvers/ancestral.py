"""Ancestral sampling: a deterministic step down to a level ``down`` below the target, then fresh
noise back up to it (k-diffusion's ``get_ancestral_step`` split in the sigma frame, ComfyUI's
rectified-flow split for flow models: `zsampling.solvers.stochastic.ancestral_split`).

`Ancestral` holds that frame for the family; `EulerAncestral` (k-diffusion's
``sample_euler_ancestral``) is its first-order member. A zag splits nothing (``eta = 0``): it is
the deterministic step itself, for Euler ancestral DDIM.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from zsampling.solvers.family import Step
from zsampling.solvers.stochastic import Noisy, Split, ancestral_split, fresh


class Ancestral(Noisy):
    """The ancestral frame (a base class, not a registered solver): subclasses give `move`, the
    deterministic step in the ODE frame from frame latent ``y`` at the step's source to the frame
    time ``down``."""

    noise_without_down: ClassVar[bool] = True
    """Whether noise is added when the split leaves no deterministic step (``eta > 1``)."""

    def move(self, here: Step, y: Tensor, x0: Tensor, down: float) -> Tensor:
        raise NotImplementedError

    def advance(self, here: Step) -> Tensor:
        src, dst, ctx = here.src, here.dst, here.ctx
        noisy = ctx.direction == "denoise"
        split = ancestral_split(src, dst, self.eta) if noisy else Split(dst.tau, 0.0, 1.0)
        x0 = here.x0
        if split.down == 0:
            y = x0
            noisy = noisy and self.noise_without_down
        else:
            y = split.gain * self.move(here, here.y, x0, split.down)
        if noisy and self.adds_noise:
            y = y + fresh(ctx, here.x) * (self.s_noise * split.up)
        return here.land(y)


class EulerAncestral(Ancestral):
    """Euler ancestral sampling with ``eta`` (share of fresh noise) and ``s_noise`` (its scale)."""

    name: ClassVar[str] = "euler-ancestral"
    order: ClassVar[int] = 1

    def move(self, here: Step, y: Tensor, x0: Tensor, down: float) -> Tensor:
        ratio = down / here.src.tau
        return ratio * y + (1 - ratio) * x0
