"""Our steps against diffusers' schedulers, on the analytic model (exact eps as the network)."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

from zsampling import DDIM, DPMSolverPP2M, Euler, Standard, Uniform, sample
from zsampling.adapters.analytic import AnalyticModel

SD = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1)
PROMPTS = ["red", "green", "blue"]


def eps_of(model: AnalyticModel, x: torch.Tensor, sigma: float, scale: float) -> torch.Tensor:
    sig = torch.full((x.shape[0],), float(sigma), dtype=torch.float64)
    label = model.encode(PROMPTS)[0]["label"]
    e_c = model.predict(x, sig, {"label": label}).eps
    e_u = model.predict(x, sig, {"label": torch.full_like(label, -1)}).eps
    return e_u + scale * (e_c - e_u)


def noise() -> torch.Tensor:
    return torch.randn(3, 2, generator=torch.Generator().manual_seed(11))


@pytest.mark.parametrize("steps", [5, 20])
def test_ddim_matches_ddim_scheduler(analytic: AnalyticModel, steps: int) -> None:
    sched = DDIMScheduler(**SD, set_alpha_to_one=False, clip_sample=False)
    sched.set_timesteps(steps)
    x = noise()
    ac = sched.alphas_cumprod.to(torch.float64)
    for t in sched.timesteps:
        x = sched.step(
            eps_of(analytic, x, ((1 - ac[t]) / ac[t]).sqrt().item(), 3.0), t, x
        ).prev_sample
    ours = sample(
        analytic,
        Standard(guidance=3.0),
        prompts=PROMPTS,
        noise=noise(),
        schedule=Uniform(steps=steps),
        solver=DDIM(),
    ).latents
    torch.testing.assert_close(ours, x, rtol=0, atol=1e-5)


def test_euler_matches_euler_scheduler(analytic: AnalyticModel) -> None:
    sched = EulerDiscreteScheduler(**SD)
    sched.set_timesteps(15)
    x = noise() * sched.init_noise_sigma
    for i, t in enumerate(sched.timesteps):
        x_in = sched.scale_model_input(x, t)
        x = sched.step(eps_of(analytic, x_in, sched.sigmas[i].item(), 3.0), t, x).prev_sample
    # diffusers starts "linspace" Euler at sigma_max * noise in sigma space: that is s(sigma_max)
    # times the noise in VP space, where our latents live.
    s_max = sched.sigmas[0].item() / (sched.sigmas[0].item() ** 2 + 1) ** 0.5
    ours = sample(
        analytic,
        Standard(guidance=3.0),
        prompts=PROMPTS,
        noise=noise() * s_max,
        sigmas=sched.sigmas.to(torch.float64),
        solver=Euler(),
    ).latents
    torch.testing.assert_close(ours, x, rtol=0, atol=1e-5)


@pytest.mark.parametrize("steps", [8, 20])
def test_dpmpp_2m_matches_dpm_solver_multistep(analytic: AnalyticModel, steps: int) -> None:
    sched = DPMSolverMultistepScheduler(**SD, algorithm_type="dpmsolver++", solver_order=2)
    sched.set_timesteps(steps)
    x = noise()
    for i, t in enumerate(sched.timesteps):
        x = sched.step(eps_of(analytic, x, sched.sigmas[i].item(), 3.0), t, x).prev_sample
    ours = sample(
        analytic,
        Standard(guidance=3.0),
        prompts=PROMPTS,
        noise=noise(),
        sigmas=sched.sigmas.to(torch.float64),
        solver=DPMSolverPP2M(),
    ).latents
    torch.testing.assert_close(ours, x, rtol=0, atol=1e-5)
    first_order = sample(
        analytic,
        Standard(guidance=3.0),
        prompts=PROMPTS,
        noise=noise(),
        sigmas=sched.sigmas.to(torch.float64),
        solver=DDIM(),
    ).latents
    assert (first_order - x).abs().max() > 1e-3  # the second-order correction is really used


def test_steps_return_the_callers_dtype(analytic: AnalyticModel) -> None:
    for solver in (DDIM(), DPMSolverPP2M()):
        out = sample(
            analytic,
            Standard(guidance=3.0),
            prompts=PROMPTS,
            noise=noise().half(),
            schedule=Uniform(steps=6),
            solver=solver,
        ).latents
        assert out.dtype == torch.float16
