"""Ancestral sampling: a deterministic step down to a level ``down`` below the target, then fresh
noise back up to it (k-diffusion's ``get_ancestral_step`` split in the sigma frame, ComfyUI's
rectified-flow split for flow models: `zsampling.solvers.stochastic.ancestral_split`).

`Ancestral` holds that frame for the family; `EulerAncestral` (k-diffusion's
``sample_euler_ancestral``) is its first-order member. A zag splits nothing (``eta = 0``): it is
the deterministic step itself, for Euler ancestral DDIM.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from zsampling.core.prediction import Prediction
from zsampling.core.solvers import History, LevelPoint, StepContext, ddim_step, from_frame, to_frame
from zsampling.solvers.stochastic import Noisy, Split, ancestral_split, first_order_only, fresh


class Ancestral(Noisy):
    """The ancestral frame (a base class, not a registered solver): subclasses give `move`, the
    deterministic step in the ODE frame from the source to the frame time ``down`` (``dtype``:
    the latent's, for any further model evaluation)."""

    noise_without_down: ClassVar[bool] = True
    """Whether noise is added when the split leaves no deterministic step (``eta > 1``)."""

    def move(
        self,
        y: Tensor,
        x0: Tensor,
        src: LevelPoint,
        down: float,
        ctx: StepContext,
        dtype: torch.dtype,
    ) -> Tensor:
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
        noisy = ctx.direction == "denoise"
        split = ancestral_split(src, dst, self.eta) if noisy else Split(dst.tau, 0.0, 1.0)
        x0 = pred.x0.to(torch.float64)
        if split.down == 0:
            y = x0
            noisy = noisy and self.noise_without_down
        else:
            y = split.gain * self.move(to_frame(x, src), x0, src, split.down, ctx, x.dtype)
        if noisy and self.adds_noise:
            y = y + fresh(ctx, x) * (self.s_noise * split.up)
        return from_frame(y, dst, x.dtype)


class EulerAncestral(Ancestral):
    """Euler ancestral sampling with ``eta`` (share of fresh noise) and ``s_noise`` (its scale)."""

    name: ClassVar[str] = "euler-ancestral"
    order: ClassVar[int] = 1

    def move(
        self,
        y: Tensor,
        x0: Tensor,
        src: LevelPoint,
        down: float,
        ctx: StepContext,
        dtype: torch.dtype,
    ) -> Tensor:
        ratio = down / src.tau
        return ratio * y + (1 - ratio) * x0
