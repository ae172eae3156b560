"""DDPM ancestral sampling: a draw from the forward process's posterior
``q(x_dst | x_src, x0)`` with the model's ``x0`` (ComfyUI's ``sample_ddpm``, diffusers'
``DDPMScheduler`` with its ``fixed_small`` variance).

On native latents with half log-SNR step ``h`` the posterior is
``(s_dst / s_src) e^{-h} x + alpha_dst (1 - e^{-2h}) x0 + s_dst sqrt(1 - e^{-2h}) z``, the same
for VP, VE and flow: DDIM with ``eta = 1``. Its zag is DDIM (the posterior's mean with no noise
is not a step of the ODE; DDIM is the deterministic sampler DDPM's model is inverted with).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from zsampling.core.casts import cast
from zsampling.solvers.family import Step
from zsampling.solvers.stochastic import Stochastic, exponential_step, finite, fresh, sde_noise


class DDPM(Stochastic):
    """DDPM: one model call and one noise draw per step."""

    name: ClassVar[str] = "ddpm"
    order: ClassVar[int] = 1

    def advance(self, here: Step) -> Tensor:
        src, dst, x = finite(here.src, here.ctx), here.dst, here.x
        h = dst.lam - src.lam
        out = exponential_step(x.to(torch.float64), here.x0, src, dst, h, 1.0)
        return cast(out + sde_noise(fresh(here.ctx, x), dst, h, 1.0), x.dtype)
