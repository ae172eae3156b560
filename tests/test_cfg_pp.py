"""CFG++ (guider ``cfg-pp``) against its update restated in plain arithmetic on the analytic
model: DDIM and DPM-Solver++(2M) steps, the zag that inverts it, its cost, and the refusal of a
solver that would ignore the renoising branch.

Parity with ComfyUI: tests/test_comfyui_methods.py."""

from __future__ import annotations

import math
from typing import ClassVar

import pytest
import torch
from test_z2 import PROMPTS, Restated
from torch import Tensor

from zsampling import CFG, Standard, Uniform, Zigzag, sample
from zsampling.adapters.analytic import AnalyticModel
from zsampling.core.errors import InvalidArgument
from zsampling.core.events import TrajectoryRecorder
from zsampling.core.prediction import Prediction
from zsampling.core.solvers import DDIM, DPMSolverPP2M, History, LevelPoint, ddim_step
from zsampling.guiders import CFGPlusPlus

STEPS = 8


def branches(r: Restated, x: Tensor, i: int, scale: float) -> tuple[Tensor, Tensor, Tensor]:
    """Guided x0, unconditional x0 and unconditional eps of ``x`` at level ``i``."""
    a, s = r.coef(i)
    e_g, e_u = r.eps(x, i, scale), r.eps(x, i, 0.0)
    return (x - s * e_g) / a, (x - s * e_u) / a, e_u


def restated_cfg_pp(r: Restated, x: Tensor, scale: float, multistep: bool) -> Tensor:
    previous: tuple[float, Tensor] | None = None  # (lambda, unconditional x0) of the last step
    for i in range(len(r.sigmas) - 1):
        x0_g, x0_u, e_u = branches(r, x, i, scale)
        (a, s), (a1, s1) = r.coef(i), r.coef(i + 1)
        out = a1 * x0_g + s1 * e_u
        lam, lam1 = math.log(a / s), (math.log(a1 / s1) if s1 > 0 else math.inf)
        if multistep and previous is not None and math.isfinite(lam1):
            h, ratio = lam1 - lam, (lam - previous[0]) / (lam1 - lam)
            out = out + a1 * (1 - math.exp(-h)) / (2 * ratio) * (x0_g - previous[1])
        previous, x = (lam, x0_u), out
    return x


@pytest.mark.parametrize("scale", [0.4, 1.0])
@pytest.mark.parametrize("solver", [DDIM(), DPMSolverPP2M()], ids=["ddim", "dpmpp-2m"])
def test_cfg_pp_equals_the_restated_update(
    analytic: AnalyticModel, noise64: Tensor, solver: object, scale: float
) -> None:
    run = sample(
        analytic, Standard(guidance=scale), prompts=PROMPTS, noise=noise64,
        schedule=Uniform(steps=STEPS), solver=solver, guider=CFGPlusPlus(),
    )  # fmt: skip
    multistep = isinstance(solver, DPMSolverPP2M)
    ref = restated_cfg_pp(Restated(analytic, STEPS), noise64, scale, multistep)
    assert torch.allclose(run.latents, ref, rtol=0, atol=1e-10)
    # both branches at every step, at scale 1 too (CFG++ there is not the conditional branch)
    assert run.counter.rows == 2 * STEPS * len(PROMPTS)
    plain = sample(
        analytic, Standard(guidance=scale), prompts=PROMPTS, noise=noise64,
        schedule=Uniform(steps=STEPS), solver=solver,
    )  # fmt: skip
    assert (plain.latents - run.latents).abs().max() > 1e-3


def test_a_cfg_pp_step_is_a_cfg_step_at_the_documented_equivalent_scale(
    analytic: AnalyticModel, noise64: Tensor
) -> None:
    """One first-order step of CFG++ at lambda moves x as CFG at w = lambda sigma_i / (sigma_i -
    sigma_{i+1}) (docs/concepts.md): the mapping between the two scales."""
    r, lam = Restated(analytic, STEPS), 0.3
    for i in (0, 3, 6):
        x0_g, _, e_u = branches(r, noise64, i, lam)
        a1, s1 = r.coef(i + 1)
        w = lam * r.sigmas[i] / (r.sigmas[i] - r.sigmas[i + 1])
        cfg_step = r.ddim(noise64, r.eps(noise64, i, w), i, i + 1)
        assert torch.allclose(a1 * x0_g + s1 * e_u, cfg_step, rtol=0, atol=1e-10)


def test_the_cfg_pp_zag_inverts_the_step(analytic: AnalyticModel, noise64: Tensor) -> None:
    """The zag renoises with the guided eps from the unconditional x0 (the roles swap):
    ``x_up = alpha_i x0_uncond + s_i eps_guided``, both read where the latent sits."""
    r, g1, g2 = Restated(analytic, STEPS), 0.8, 0.5
    recorder = TrajectoryRecorder()
    sample(
        analytic, Zigzag(guidance=g1, inversion_guidance=g2, zigzag_steps=1),
        prompts=PROMPTS, noise=noise64, schedule=Uniform(steps=STEPS), guider=CFGPlusPlus(),
        observers=[recorder],
    )  # fmt: skip
    x_next = recorder.events[0].x
    _, x0_u, _ = branches(r, x_next, 1, g2)
    a, s = r.coef(0)
    assert torch.allclose(recorder.events[1].x, a * x0_u + s * r.eps(x_next, 1, g2), atol=1e-10)
    # with the prediction held fixed, the zag's formula undoes the step exactly
    x0_g, x0_u, e_u = branches(r, noise64, 0, g1)
    e_g = r.eps(noise64, 0, g1)
    a1, s1 = r.coef(1)
    down = a1 * x0_g + s1 * e_u
    up = a * (down - s1 * e_u) / a1 + s * e_g
    assert torch.allclose(up, noise64, rtol=0, atol=1e-10)


class PlainHeun:
    """A solver that reads only the consistent pair and declares no renoising support."""

    name: ClassVar[str] = "plain-test"
    order: ClassVar[int] = 1

    def step(
        self, x: Tensor, pred: Prediction, src: LevelPoint, dst: LevelPoint, history: History | None
    ) -> Tensor:
        return ddim_step(x, Prediction(pred.x0, pred.eps), dst)


def test_a_solver_without_renoising_support_is_refused(
    analytic: AnalyticModel, noise64: Tensor
) -> None:
    with pytest.raises(InvalidArgument, match="renoises with another branch") as caught:
        sample(
            analytic, Standard(guidance=0.5), prompts=PROMPTS, noise=noise64,
            schedule=Uniform(steps=4), solver=PlainHeun(), guider=CFGPlusPlus(),
        )  # fmt: skip
    assert caught.value.field == "solver"
    # the same solver with plain CFG runs
    sample(
        analytic, Standard(guidance=0.5), prompts=PROMPTS, noise=noise64,
        schedule=Uniform(steps=4), solver=PlainHeun(), guider=CFG(),
    )  # fmt: skip


def test_scale_zero_is_unconditional_sampling(analytic: AnalyticModel, noise64: Tensor) -> None:
    args = dict(prompts=PROMPTS, noise=noise64, schedule=Uniform(steps=STEPS))
    pp = sample(analytic, Standard(guidance=0.0), guider=CFGPlusPlus(), **args)  # type: ignore[arg-type]
    plain = sample(analytic, Standard(guidance=0.0), **args)  # type: ignore[arg-type]
    assert torch.equal(pp.latents, plain.latents)
    assert pp.counter.rows == STEPS * len(PROMPTS)
