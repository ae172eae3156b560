"""Implicit Z-Sampling and Z²-Sampling against their update restated in plain arithmetic, the
exact algebra that ties the implicit zag to zigzag's explicit one, and their cost."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from zsampling import CFG, Standard, Uniform, Zigzag, sample
from zsampling.adapters.analytic import AnalyticModel
from zsampling.core.errors import InvalidArgument
from zsampling.core.events import TrajectoryRecorder
from zsampling.core.guidance import EvaluationCounter, GuidanceContext
from zsampling.core.levels import Process
from zsampling.core.prediction import Prediction
from zsampling.guiders import APG
from zsampling.samplers import Z2, ImplicitZigzag

PROMPTS = ["red", "green", "blue"] * 2


class Restated:
    """The analytic model's CFG and DDIM written out with plain VP arithmetic."""

    def __init__(self, model: AnalyticModel, steps: int) -> None:
        self.model = model
        self.sigmas = Uniform(steps=steps).sigmas(model).to(torch.float64).tolist()
        self.label = model.encode(PROMPTS)[0]["label"]

    def coef(self, i: int) -> tuple[float, float]:
        sigma = self.sigmas[i]
        alpha = (1 + sigma**2) ** -0.5
        return alpha, sigma * alpha

    def eps(self, x: Tensor, i: int, scale: float) -> Tensor:
        sigma = torch.full((x.shape[0],), self.sigmas[i], dtype=torch.float64)
        e_c = self.model.predict(x, sigma, {"label": self.label}).eps
        e_u = self.model.predict(x, sigma, {"label": torch.full_like(self.label, -1)}).eps
        return e_u + scale * (e_c - e_u)

    def ddim(self, x: Tensor, e: Tensor, src: int, dst: int) -> Tensor:
        (a0, s0), (a1, s1) = self.coef(src), self.coef(dst)
        return a1 * (x - s0 * e) / a0 + s1 * e

    def shift(self, i: int) -> float:
        """c_i = alpha_i (sigma_i - sigma_{i+1}), from sigma directly."""
        return self.coef(i)[0] * (self.sigmas[i] - self.sigmas[i + 1])


def restated_implicit(r: Restated, x: Tensor, g1: float, g2: float, lam: int, rounds: int):
    for i in range(len(r.sigmas) - 1):
        if i < lam:
            for _ in range(rounds):
                x = x - r.shift(i) * (r.eps(x, i, g1) - r.eps(x, i, g2))
        x = r.ddim(x, r.eps(x, i, g1), i, i + 1)
    return x


def restated_z2(r: Restated, x: Tensor, g1: float, g2: float, lam: int, first: str):
    gap = None
    for i in range(len(r.sigmas) - 1):
        if i < lam:
            if gap is None and first == "implicit":
                gap = r.eps(x, i, g1) - r.eps(x, i, g2)
            if gap is not None:
                x = x - r.shift(i) * gap
            gap = r.eps(x, i, g1) - r.eps(x, i, g2)  # the surrogate for step i + 1
        x = r.ddim(x, r.eps(x, i, g1), i, i + 1)
    return x


@pytest.mark.parametrize(("steps", "lam", "rounds", "g2"), [(10, 9, 1, 0.0), (7, 4, 2, 0.5)])
def test_implicit_zigzag_equals_the_restated_update(
    analytic: AnalyticModel, noise64: Tensor, steps: int, lam: int, rounds: int, g2: float
) -> None:
    sampler = ImplicitZigzag(guidance=3.5, inversion_guidance=g2, zigzag_steps=lam, rounds=rounds)
    ours = sample(analytic, sampler, prompts=PROMPTS, noise=noise64, schedule=Uniform(steps=steps))
    ref = restated_implicit(Restated(analytic, steps), noise64, 3.5, g2, lam, rounds)
    assert torch.allclose(ours.latents, ref, rtol=0, atol=1e-10)
    # 2 guided calls (4 branch rows) per reflecting round step, 1 per plain step
    assert ours.counter.guided_calls == steps + lam * rounds
    assert ours.counter.rows == 2 * len(PROMPTS) * (steps + lam * rounds)


@pytest.mark.parametrize("first", ["plain", "implicit"])
@pytest.mark.parametrize(("steps", "lam", "g2"), [(10, 9, 0.0), (7, 4, 1.5)])
def test_z2_equals_the_restated_update(
    analytic: AnalyticModel, noise64: Tensor, steps: int, lam: int, g2: float, first: str
) -> None:
    sampler = Z2(guidance=3.5, inversion_guidance=g2, zigzag_steps=lam, first_step=first)
    ours = sample(analytic, sampler, prompts=PROMPTS, noise=noise64, schedule=Uniform(steps=steps))
    ref = restated_z2(Restated(analytic, steps), noise64, 3.5, g2, lam, first)
    assert torch.allclose(ours.latents, ref, rtol=0, atol=1e-10)


def test_z2_costs_what_standard_sampling_costs(analytic: AnalyticModel, noise64: Tensor) -> None:
    """The paper's claim: 2 branches per step (one guided call), as standard CFG, against
    zigzag's 3T - 2 calls; ``first_step = "implicit"`` adds exactly one call."""
    steps, batch = 10, len(PROMPTS)
    run = sample(
        analytic, Z2(guidance=3.5), prompts=PROMPTS, noise=noise64, schedule=Uniform(steps=steps)
    )
    assert run.counter.guided_calls == steps
    assert run.counter.model_calls == steps
    assert run.counter.rows == 2 * steps * batch
    assert run.counter.cond_rows == run.counter.uncond_rows == steps * batch
    first = sample(
        analytic, Z2(guidance=3.5, first_step="implicit"), prompts=PROMPTS, noise=noise64,
        schedule=Uniform(steps=steps),
    )  # fmt: skip
    assert first.counter.guided_calls == steps + 1
    zig = sample(
        analytic,
        Zigzag(guidance=3.5),
        prompts=PROMPTS,
        noise=noise64,
        schedule=Uniform(steps=steps),
    )
    assert zig.counter.guided_calls == 3 * steps - 2
    # and it is not standard sampling in disguise
    std = sample(
        analytic,
        Standard(guidance=3.5),
        prompts=PROMPTS,
        noise=noise64,
        schedule=Uniform(steps=steps),
    )
    assert (run.latents - std.latents).abs().max() > 1e-3


def test_the_implicit_zag_differs_from_zigzags_by_exactly_the_weak_predictions_change(
    analytic: AnalyticModel, noise64: Tensor
) -> None:
    """DDIM zig at g1 then source zag at g2 gives ``x - c_i (eps_g1(x, t_i) - eps_g2(x_next,
    t_{i+1}))``; the implicit zag reads eps_g2 at ``(x, t_i)``: the difference is exactly
    ``c_i (eps_g2(x_next, t_{i+1}) - eps_g2(x, t_i))``, which the run's own zag confirms."""
    r, g1, g2 = Restated(analytic, 6), 3.5, 0.5
    recorder = TrajectoryRecorder()
    sample(
        analytic, Zigzag(guidance=g1, inversion_guidance=g2, zigzag_steps=1),
        prompts=PROMPTS, noise=noise64, schedule=Uniform(steps=6), observers=[recorder],
    )  # fmt: skip
    assert recorder.kinds[:2] == ["denoise", "invert"]
    explicit = recorder.events[1].x
    x_next = r.ddim(noise64, r.eps(noise64, 0, g1), 0, 1)
    implicit = noise64 - r.shift(0) * (r.eps(noise64, 0, g1) - r.eps(noise64, 0, g2))
    difference = r.shift(0) * (r.eps(x_next, 1, g2) - r.eps(noise64, 0, g2))
    assert torch.allclose(explicit - implicit, difference, rtol=0, atol=1e-10)
    assert difference.abs().max() > 1e-3  # on this model the two are not the same move


class ConstantEps:
    """A model whose eps is one fixed vector per branch, at every latent and level: along a DDIM
    step nothing changes, which is where the algebra says implicit and explicit zigzag agree."""

    process = Process("vp")
    table = None
    dtype = torch.float64
    device = torch.device("cpu")

    def latent_shape(self) -> tuple[int, ...]:
        return (3,)

    def sigma_range(self) -> tuple[float, float]:
        return (0.03, 14.6)

    def encode(self, prompts, negative_prompts=None):  # type: ignore[no-untyped-def]
        return {"c": torch.ones(len(prompts))}, {"c": torch.zeros(len(prompts))}

    def predict(self, x: Tensor, sigma: Tensor, cond: dict[str, Tensor]) -> Prediction:
        alpha, s = self.process.coefficients(sigma.to(torch.float64))
        on = cond["c"].to(torch.float64).view(-1, 1)
        eps = on * torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64) + torch.tensor(
            [0.1, 0.4, -0.3], dtype=torch.float64
        )
        eps = eps.expand_as(x)
        return Prediction.from_eps(x, eps, alpha.view(-1, 1), s.view(-1, 1))


@pytest.mark.parametrize("inversion", ["source", "target"])
def test_implicit_zigzag_and_z2_equal_zigzag_where_predictions_do_not_move(inversion: str) -> None:
    model, noise = (
        ConstantEps(),
        torch.randn(2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)),
    )
    levels = torch.tensor([8.0, 3.0, 1.0, 0.4, 0.1, 0.0])
    run = {"prompts": ["a", "b"], "noise": noise, "sigmas": levels}
    zig = sample(model, Zigzag(guidance=4.0, inversion_guidance=1.0, inversion=inversion), **run)  # type: ignore[arg-type]
    implicit = sample(model, ImplicitZigzag(guidance=4.0, inversion_guidance=1.0), **run)  # type: ignore[arg-type]
    z2 = sample(model, Z2(guidance=4.0, inversion_guidance=1.0, first_step="implicit"), **run)  # type: ignore[arg-type]
    assert torch.allclose(implicit.latents, zig.latents, rtol=0, atol=1e-12)
    assert torch.allclose(z2.latents, zig.latents, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cls", [ImplicitZigzag, Z2])
def test_zigzag_steps_must_fit_the_schedule(
    analytic: AnalyticModel, noise64: Tensor, cls: type
) -> None:
    with pytest.raises(InvalidArgument, match=r"sampler\.zigzag_steps"):
        sample(
            analytic, cls(zigzag_steps=9), prompts=PROMPTS, noise=noise64, schedule=Uniform(steps=5)
        )


@pytest.mark.parametrize("guider", [CFG(), APG(momentum=-0.5)], ids=["cfg", "apg-momentum"])
def test_at_scales_is_each_scales_call_from_one_evaluation(
    analytic: AnalyticModel, noise64: Tensor, guider: object
) -> None:
    """What implicit-zigzag and z2 read the gap with: each scale's prediction equals a call at
    that scale, one evaluation makes them all, and a stateful rule's state moves once."""
    cond, uncond = analytic.encode(PROMPTS)
    context = GuidanceContext(2, 10, "denoise")
    sigma, scales = 1.3, (3.5, 0.0, 1.0, 0.7)
    many = guider.bind(analytic, cond, uncond, EvaluationCounter())  # type: ignore[attr-defined]
    made = many.at_scales(noise64, sigma, scales, context)
    assert (many.counter.guided_calls, many.counter.model_calls) == (1, 1)
    assert many.counter.rows == 2 * len(PROMPTS)
    for scale, pred in zip(scales, made, strict=True):
        one = guider.bind(analytic, cond, uncond, EvaluationCounter())  # type: ignore[attr-defined]
        ref = one(noise64, sigma, scale, context)
        assert torch.allclose(pred.eps, ref.eps, rtol=0, atol=1e-12), scale
        assert torch.allclose(pred.x0, ref.x0, rtol=0, atol=1e-12), scale
    first = guider.bind(analytic, cond, uncond, EvaluationCounter())  # type: ignore[attr-defined]
    first(noise64, sigma, scales[0], context)
    assert repr(many.state) == repr(first.state)  # the extra scales left the state alone
    assert bool(first.state) == isinstance(guider, APG)  # APG's momentum did move
