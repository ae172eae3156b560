"""Z-Sampling on a real (tiny) SD pipeline against a literal re-run of the released code's loop.

The reference below follows the released ``z_sampling_call`` (utils/pipeline_stable_diffusion_xl.py
of xie-lab-ml/Zigzag-Diffusion-Sampling) line by line, for an SD UNet: diffusers' own
``DDIMScheduler.step`` for every zig, ``DDIMInverseScheduler.step(eps, t_{i+1}, x_next)`` with the
model evaluated at ``t_i`` for every zag, ``_step_index`` reset by hand before every step, and both
CFG branches computed in one batched UNet call every time. Nothing of zsampling is used in it.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from diffusers import DDIMInverseScheduler, DDIMScheduler
from tiny_pipelines import latents_noise

from zsampling import CFG, Uniform, Zigzag, sample
from zsampling.adapters.diffusers import DiffusersModel

pytestmark = pytest.mark.usefixtures("single_thread")

PROMPTS = ["a red cube", "a cat on a mat"]
SEEDS = [1, 2]
STEPS = 8
GAMMA1, GAMMA2 = 3.0, 0.0


@torch.inference_mode()
def official_zigzag(model: DiffusersModel, latents: torch.Tensor, steps: int) -> torch.Tensor:
    """The released code's loop (lambda = T - 1, T_max = 1), with diffusers' schedulers."""
    pipe = model.pipeline
    scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    inverse_scheduler = DDIMInverseScheduler.from_config(pipe.scheduler.config)
    scheduler.set_timesteps(steps)
    inverse_scheduler.set_timesteps(steps)
    timesteps = scheduler.timesteps
    cond, uncond = pipe.encode_prompt(PROMPTS, pipe.device, 1, True)
    embeds = torch.cat([uncond, cond])

    def guided_eps(x: torch.Tensor, t: Any, scale: float) -> torch.Tensor:
        model_input = scheduler.scale_model_input(torch.cat([x, x]), t)
        both = pipe.unet(model_input, t, encoder_hidden_states=embeds).sample
        eps_u, eps_c = both.chunk(2)  # both branches, even when scale == 0
        return eps_u + scale * (eps_c - eps_u)

    lambda_step = len(timesteps) - 1  # the released default
    x = latents * scheduler.init_noise_sigma
    for i, t in enumerate(timesteps):
        noise_pred = guided_eps(x, t, GAMMA1)
        scheduler._step_index = None  # the released code resets step state by hand, every step
        x_next = scheduler.step(noise_pred, t, x).prev_sample
        if i < lambda_step:
            for _ in range(1):  # T_max = 1
                # zag: the model at t_i on x_next, the inverse step called with t_{i+1}
                noise_pred = guided_eps(x_next, t, GAMMA2)
                inverse_scheduler._step_index = None
                x = inverse_scheduler.step(noise_pred, timesteps[i + 1], x_next).prev_sample
                # zig again from t_i
                noise_pred = guided_eps(x, t, GAMMA1)
                scheduler._step_index = None
                x_next = scheduler.step(noise_pred, t, x).prev_sample
        x = x_next
    return x


def test_official_mode_matches_the_released_loop(tiny_sd: DiffusersModel) -> None:
    noise = latents_noise(SEEDS)
    ref = official_zigzag(tiny_sd, noise, STEPS)
    zig = Zigzag(guidance=GAMMA1, inversion="official", inversion_guidance=GAMMA2)
    kw: dict[str, Any] = dict(prompts=PROMPTS, seeds=SEEDS, schedule=Uniform(steps=STEPS))
    full = sample(tiny_sd, zig, guider=CFG(skip_unused_branches=False), **kw)
    skipping = sample(tiny_sd, zig, **kw)  # default CFG(): gamma2 = 0 needs only the uncond rows

    assert float((full.latents - ref).abs().max()) <= 1e-4
    assert float((skipping.latents - ref).abs().max()) <= 1e-4
    batch, guided = len(PROMPTS), 3 * STEPS - 2
    assert full.counter.guided_calls == skipping.counter.guided_calls == guided
    assert full.counter.rows == 2 * batch * guided  # what the released code pays
    assert skipping.counter.rows == full.counter.rows - batch * (STEPS - 1)
    assert skipping.counter.cond_rows == batch * (2 * STEPS - 1)


def test_official_mode_differs_from_target_mode(tiny_sd: DiffusersModel) -> None:
    """The off-by-one is visible on a real UNet too (so the test above can tell them apart)."""
    kw: dict[str, Any] = dict(prompts=PROMPTS, seeds=SEEDS, schedule=Uniform(steps=STEPS))
    official = sample(tiny_sd, Zigzag(guidance=GAMMA1, inversion="official"), **kw)
    target = sample(tiny_sd, Zigzag(guidance=GAMMA1, inversion="target"), **kw)
    assert float((official.latents - target.latents).abs().max()) > 1e-2
