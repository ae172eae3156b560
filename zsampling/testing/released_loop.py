"""The released Z-Sampling loop, restated literally: the reference tests and benchmarks share.

It follows the released ``z_sampling_call`` (utils/pipeline_stable_diffusion_xl.py of
xie-lab-ml/Zigzag-Diffusion-Sampling) line by line, for an SD UNet: diffusers' own
``DDIMScheduler.step`` for every zig, ``DDIMInverseScheduler.step(eps, t_{i+1}, x_next)`` with the
model evaluated at ``t_i`` for every zag, ``_step_index`` reset by hand before every step, and both
CFG branches computed in one batched UNet call every time. Nothing of zsampling is used in it, so
comparing zsampling's ``official`` mode with it tests our level arithmetic against diffusers'.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


@torch.inference_mode()
def released_zigzag(
    pipe: Any,
    prompts: Sequence[str],
    latents: torch.Tensor,
    steps: int,
    gamma1: float,
    gamma2: float = 0.0,
    rows: list[int] | None = None,
) -> torch.Tensor:
    """The released loop (lambda = T - 1, T_max = 1) on ``pipe``'s UNet and scheduler config.

    ``latents`` is the unit-variance starting noise; ``rows`` (if given) receives the number of
    UNet rows of each call, for cost comparisons.
    """
    from diffusers import DDIMInverseScheduler, DDIMScheduler

    scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    inverse_scheduler = DDIMInverseScheduler.from_config(pipe.scheduler.config)
    scheduler.set_timesteps(steps)
    inverse_scheduler.set_timesteps(steps)
    timesteps = scheduler.timesteps
    cond, uncond = pipe.encode_prompt(list(prompts), pipe.device, 1, True)
    embeds = torch.cat([uncond, cond])

    def guided_eps(x: torch.Tensor, t: Any, scale: float) -> torch.Tensor:
        model_input = scheduler.scale_model_input(torch.cat([x, x]), t)
        if rows is not None:
            rows.append(int(model_input.shape[0]))
        both = pipe.unet(model_input, t, encoder_hidden_states=embeds).sample
        eps_u, eps_c = both.chunk(2)  # both branches, even when scale == 0
        return eps_u + scale * (eps_c - eps_u)

    lambda_step = len(timesteps) - 1  # the released default
    x = latents * scheduler.init_noise_sigma
    for i, t in enumerate(timesteps):
        noise_pred = guided_eps(x, t, gamma1)
        scheduler._step_index = None  # the released code resets step state by hand, every step
        x_next = scheduler.step(noise_pred, t, x).prev_sample
        if i < lambda_step:
            # zag: the model at t_i on x_next, the inverse step called with t_{i+1}
            noise_pred = guided_eps(x_next, t, gamma2)
            inverse_scheduler._step_index = None
            x = inverse_scheduler.step(noise_pred, timesteps[i + 1], x_next).prev_sample
            # zig again from t_i
            noise_pred = guided_eps(x, t, gamma1)
            scheduler._step_index = None
            x_next = scheduler.step(noise_pred, t, x).prev_sample
        x = x_next
    return x
