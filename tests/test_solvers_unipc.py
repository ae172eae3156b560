"""UniPC against diffusers' ``UniPCMultistepScheduler`` (data prediction), on the analytic model
with exact eps as the network: both variants, orders 1 to 3, with and without the corrector."""

from __future__ import annotations

import pytest
import torch
from diffusers import UniPCMultistepScheduler
from test_solvers import PROMPTS, SD, eps_of

from zsampling import DDIM, Standard, StepEvent, Uniform, Zigzag, sample
from zsampling.adapters.analytic import AnalyticModel
from zsampling.solvers.unipc import UniPC
from zsampling.testing.compare import relative_max as rel


def noise() -> torch.Tensor:
    return torch.randn(3, 2, generator=torch.Generator().manual_seed(11), dtype=torch.float64)


def diffusers_unipc(model: AnalyticModel, steps: int, **config: object) -> torch.Tensor:
    sched = UniPCMultistepScheduler(**SD, **config)  # type: ignore[arg-type]
    sched.set_timesteps(steps)
    x = noise()
    for i, t in enumerate(sched.timesteps):
        x = sched.step(eps_of(model, x, sched.sigmas[i].item(), 3.0), t, x).prev_sample
    return x, sched.sigmas.to(torch.float64)  # type: ignore[return-value]


@pytest.mark.parametrize("steps", [10, 25])
@pytest.mark.parametrize(
    ("variant", "order", "corrector"),
    [("bh2", 2, True), ("bh1", 2, True), ("bh2", 3, True), ("bh1", 3, False), ("bh2", 1, True)],
)
def test_unipc_matches_diffusers(
    analytic: AnalyticModel, steps: int, variant: str, order: int, corrector: bool
) -> None:
    config = dict(solver_type=variant, solver_order=order)
    if variant == "bh1":  # diffusers' bh1 step into sigma 0 is 0 * inf = NaN: end at sigma_min
        config["final_sigmas_type"] = "sigma_min"
    if not corrector:
        config["disable_corrector"] = list(range(steps))  # type: ignore[assignment]
    ref, sigmas = diffusers_unipc(analytic, steps, **config)
    solver = UniPC(variant=variant, max_order=order, corrector=corrector)  # type: ignore[arg-type]
    run = sample(
        analytic,
        Standard(guidance=3.0),
        prompts=PROMPTS,
        noise=noise(),
        sigmas=sigmas,
        solver=solver,
    )
    assert rel(run.latents, ref) <= 1e-5
    ddim = sample(
        analytic,
        Standard(guidance=3.0),
        prompts=PROMPTS,
        noise=noise(),
        sigmas=sigmas,
        solver=DDIM(),
    ).latents
    assert rel(ddim, ref) > 1e-3  # the higher orders and the corrector are really used
    assert run.counter.guided_calls == steps  # UniC costs no model call


def test_an_isolated_zag_is_ddim(analytic: AnalyticModel) -> None:
    def moves(solver: object) -> list[StepEvent]:
        seen: list[StepEvent] = []
        sample(
            analytic,
            Zigzag(guidance=3.0, inversion_guidance=1.0, zigzag_steps=1),
            prompts=PROMPTS,
            noise=noise(),
            schedule=Uniform(steps=3),
            solver=solver,  # type: ignore[arg-type]
            observers=[seen.append],
        )
        return seen

    unipc, ddim = moves(UniPC(max_order=3)), moves(DDIM())
    assert [e.kind for e in unipc] == ["denoise", "invert", "denoise", "denoise", "denoise"]
    # the first denoise has no history and the zag none upwards: both are DDIM
    for ours, first_order in zip(unipc[:2], ddim[:2], strict=True):
        assert rel(ours.x, first_order.x) <= 1e-12
    assert rel(unipc[-1].x, ddim[-1].x) > 1e-4
