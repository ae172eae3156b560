"""The new solvers on the tiny SD pipelines (eps and v prediction) against the pipeline run with
the diffusers scheduler of the same method: the same network, levels and seeds."""

from __future__ import annotations

from typing import Any

import pytest
from diffusers import LMSDiscreteScheduler, UniPCMultistepScheduler
from test_diffusers_parity import GUIDANCE, PROMPTS, SEEDS, pipeline_latents
from tiny_pipelines import latents_noise, with_scheduler

from zsampling import Standard, sample
from zsampling.adapters.diffusers import DiffusersModel
from zsampling.schedules.diffusers import Scheduler
from zsampling.solvers.lms import LMS
from zsampling.solvers.unipc import UniPC
from zsampling.testing.compare import relative_max

pytestmark = pytest.mark.usefixtures("single_thread")

CASES: list[tuple[str, type, Any]] = [
    ("unipc-bh2", UniPCMultistepScheduler, UniPC()),
    ("lms", LMSDiscreteScheduler, LMS(final_step="polynomial")),
]


def check(model: DiffusersModel, case: tuple[str, type, Any], steps: int) -> float:
    _, cls, solver = case
    noise = latents_noise(SEEDS, model.latent_shape())
    pipe = with_scheduler(model, cls)
    ref = pipeline_latents(
        pipe, noise, num_inference_steps=steps, height=model.height, width=model.width
    )
    ours = sample(
        model,
        Standard(guidance=GUIDANCE),
        prompts=PROMPTS,
        seeds=SEEDS,
        schedule=Scheduler(steps=steps, scheduler=cls.__name__),
        solver=solver,
    ).latents
    return relative_max(ours, ref)


@pytest.mark.parametrize("steps", [10, 25])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_sd_eps(tiny_sd: DiffusersModel, case: Any, steps: int) -> None:
    assert check(tiny_sd, case, steps) <= 1e-5


@pytest.mark.parametrize("steps", [10, 25])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_sd_v(tiny_sdv: DiffusersModel, case: Any, steps: int) -> None:
    assert check(tiny_sdv, case, steps) <= 1e-5
