"""The released Z-Sampling loop, restated literally: the reference tests and benchmarks share.

It follows the released ``z_sampling_call`` (utils/pipeline_stable_diffusion_xl.py of
xie-lab-ml/Zigzag-Diffusion-Sampling) line by line, for an SD or SDXL UNet: diffusers' own
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
    embeds, added = _conditioning(pipe, prompts, latents)

    def guided_eps(x: torch.Tensor, t: Any, scale: float) -> torch.Tensor:
        model_input = scheduler.scale_model_input(torch.cat([x, x]), t)
        if rows is not None:
            rows.append(int(model_input.shape[0]))
        both = pipe.unet(
            model_input, t, encoder_hidden_states=embeds, added_cond_kwargs=added
        ).sample
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


def _conditioning(
    pipe: Any, prompts: Sequence[str], latents: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
    """Both branches' text embeddings (unconditional rows first) and, for SDXL, the pooled text
    and size ids the released SDXL pipeline adds (original = target = the image size, no crop)."""
    if not hasattr(pipe, "_get_add_time_ids"):  # SD: text embeddings only
        cond, uncond = pipe.encode_prompt(list(prompts), pipe.device, 1, True)
        return torch.cat([uncond, cond]), None
    cond, uncond, pooled, neg_pooled = pipe.encode_prompt(
        prompt=list(prompts),
        device=pipe.device,
        num_images_per_prompt=1,
        do_classifier_free_guidance=True,
    )
    size = (latents.shape[-2] * pipe.vae_scale_factor, latents.shape[-1] * pipe.vae_scale_factor)
    projection = (
        int(pooled.shape[-1])
        if pipe.text_encoder_2 is None
        else pipe.text_encoder_2.config.projection_dim
    )
    ids = pipe._get_add_time_ids(
        size, (0, 0), size, dtype=cond.dtype, text_encoder_projection_dim=projection
    )
    ids = ids.to(cond.device).repeat(2 * len(prompts), 1)
    return torch.cat([uncond, cond]), {
        "text_embeds": torch.cat([neg_pooled, pooled]),
        "time_ids": ids,
    }
