"""The stochastic solvers equal diffusers' stochastic schedulers on the tiny SD pipeline (eps and
v), drawing the same noise: the pipeline gets the run's per-item generators after the starting
noise was drawn from them, as a run draws it."""

from __future__ import annotations

from typing import Any

import pytest
from diffusers import DDPMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler
from tiny_pipelines import with_scheduler

from zsampling import Standard, sample
from zsampling.adapters.diffusers import DiffusersModel
from zsampling.core.sampling import initial_noise
from zsampling.schedules.diffusers import Scheduler
from zsampling.solvers.ancestral import EulerAncestral
from zsampling.solvers.ddpm import DDPM
from zsampling.solvers.dpmpp_2m_sde import DPMPP2MSDE

pytestmark = pytest.mark.usefixtures("single_thread")

PROMPTS = ["a red cube", "a cat on a mat"]
SEEDS = [3, 4]
GUIDANCE = 3.0

Case = tuple[str, type, dict[str, Any], Any]
CASES: list[Case] = [
    ("euler-ancestral", EulerAncestralDiscreteScheduler, {}, EulerAncestral()),
    ("ddpm", DDPMScheduler, {}, DDPM()),
    ("dpmpp-2m-sde", DPMSolverMultistepScheduler, {"algorithm_type": "sde-dpmsolver++"},
     DPMPP2MSDE()),
]  # fmt: skip


def relative_difference(
    model: DiffusersModel, case: tuple[str, type, dict[str, Any], Any]
) -> float:
    _, cls, options, solver = case
    noise, generators = initial_noise(model.latent_shape(), SEEDS)
    pipe = with_scheduler(model, cls, **options)
    ref = pipe(
        PROMPTS,
        latents=noise.clone(),
        generator=generators,
        output_type="latent",
        guidance_scale=GUIDANCE,
        num_inference_steps=10,
        height=model.height,
        width=model.width,
    ).images
    sigmas = Scheduler(steps=10, scheduler=cls.__name__, options=options).sigmas(model)
    if cls is DDPMScheduler:  # its last step goes to alpha 1, not to the grid's first level
        sigmas[-1] = 0.0
    ours = sample(
        model,
        Standard(guidance=GUIDANCE),
        prompts=PROMPTS,
        seeds=SEEDS,
        sigmas=sigmas,
        solver=solver,
    )
    return float((ours.latents - ref).abs().max() / ref.abs().max())


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_sd_matches_the_stochastic_scheduler(tiny_sd: DiffusersModel, case: Any) -> None:
    assert relative_difference(tiny_sd, case) <= 1e-5


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_sd_v_matches_the_stochastic_scheduler(tiny_sdv: DiffusersModel, case: Any) -> None:
    assert relative_difference(tiny_sdv, case) <= 1e-5
