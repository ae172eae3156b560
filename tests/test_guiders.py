"""The built-in guiders equal diffusers' guiders on the same predictions, interval included, and
zigzag's per-call scales reach them; APG's momentum follows the path as documented."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from diffusers.guiders import (
    AdaptiveProjectedGuidance,
    ClassifierFreeGuidance,
    ClassifierFreeZeroStarGuidance,
    TangentialClassifierFreeGuidance,
)
from diffusers.guiders import AdaptiveProjectedMixGuidance as DiffusersAPGMix
from diffusers.guiders import MagnitudeAwareGuidance as DiffusersMagnitudeAware
from diffusers.guiders.adaptive_projected_guidance import MomentumBuffer
from spies import ModelSpy

from zsampling import CFG, DDIM, GuidanceContext, SamplingPath, Standard, Uniform, Zigzag, sample
from zsampling.adapters.analytic import AnalyticModel
from zsampling.core.prediction import Prediction
from zsampling.core.rules import GuidanceCall, GuidanceRule
from zsampling.guiders import (
    APG,
    AdaptiveProjectedMixGuidance,
    CFGZeroStar,
    MagnitudeAwareGuidance,
    RescaledCFG,
    TangentialCFG,
)

STEPS = 8

# (our rule, the diffusers guider built with the same settings)
CASES: dict[str, tuple[GuidanceRule, Any]] = {
    "cfg": (CFG(start=0.2, stop=0.8), lambda: ClassifierFreeGuidance(start=0.2, stop=0.8)),
    "apg": (
        APG(eta=0.3, norm_threshold=0.5, guidance_rescale=0.4, start=0.1),
        lambda: AdaptiveProjectedGuidance(
            eta=0.3,
            adaptive_projected_guidance_rescale=0.5,
            guidance_rescale=0.4,
            start=0.1,
        ),
    ),
    "cfg-zero-star": (
        CFGZeroStar(zero_init_steps=2, stop=0.7),
        lambda: ClassifierFreeZeroStarGuidance(zero_init_steps=2, stop=0.7),
    ),
    "tangential-cfg": (
        TangentialCFG(guidance_rescale=0.2),
        lambda: TangentialClassifierFreeGuidance(guidance_rescale=0.2),
    ),
    "rescaled-cfg": (
        RescaledCFG(stop=0.9),
        lambda: ClassifierFreeGuidance(guidance_rescale=0.7, stop=0.9),
    ),
    "magnitude-aware": (
        MagnitudeAwareGuidance(alpha=2.0, start=0.1),
        lambda: DiffusersMagnitudeAware(alpha=2.0, start=0.1),
    ),
    # no momentum (diffusers' guider keeps one across its calls; ours follows the path, see
    # test_apg_momentum_*): CFG up to level 3, APG at scale 4 after it
    "apg-mix": (
        AdaptiveProjectedMixGuidance(
            apg_scale=4.0, apg_start_step=3, momentum=0.0, eta=0.2, norm_threshold=0.5
        ),
        lambda: DiffusersAPGMix(
            adaptive_projected_guidance_scale=4.0,
            adaptive_projected_guidance_start_step=3,
            adaptive_projected_guidance_momentum=0.0,
            eta=0.2,
            adaptive_projected_guidance_rescale=0.5,
        ),
    ),
}


def diffusers_guided(reference: Any, scale: float, level: int, cond: Any, uncond: Any) -> Any:
    """What the diffusers guider gives at this step: it decides itself whether it needs the
    unconditional prediction (``num_conditions``)."""
    reference.guidance_scale = scale
    reference.set_state(level, STEPS, None)
    if reference.num_conditions == 1:
        return reference.forward(cond).pred
    return reference.forward(cond, uncond).pred


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_each_guider_equals_diffusers_on_the_same_predictions(
    analytic: AnalyticModel, case: str
) -> None:
    rule, make = CASES[case]
    reference = make()
    cond, uncond = analytic.encode(["red", "blue", "green"])
    x = torch.randn(3, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 2
    sigmas = Uniform(steps=STEPS).sigmas(analytic)
    guider = rule.bind(analytic, cond, uncond)
    checked = 0
    for level in range(STEPS):
        sigma = float(sigmas[level])
        levels = torch.full((3,), sigma, dtype=torch.float64)
        pc, pu = analytic.predict(x, levels, cond), analytic.predict(x, levels, uncond)
        for scale in (0.0, 1.0, 2.5, 7.0):
            ours = guider(x, sigma, scale, GuidanceContext(level, STEPS, "denoise"))
            expected = diffusers_guided(reference, scale, level, pc.eps, pu.eps)
            torch.testing.assert_close(ours.eps, expected, rtol=1e-6, atol=1e-6)
            alpha, s = analytic.process.coefficients(torch.tensor(sigma, dtype=torch.float64))
            torch.testing.assert_close(alpha * ours.x0 + s * ours.eps, x)  # a consistent pair
            checked += 1
    assert checked == 4 * STEPS


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_each_guider_equals_diffusers_on_image_shaped_tensors(case: str) -> None:
    """The combine rule alone, on (batch, channels, height, width) tensors, where the norms and
    projections run over several dimensions."""
    rule, make = CASES[case]
    gen = torch.Generator().manual_seed(11)
    cond, uncond, x = (torch.randn(2, 4, 8, 8, generator=gen) for _ in range(3))
    for level, scale in [(3, 4.0), (5, 0.0), (1, 1.5)]:
        call = GuidanceCall(
            scale,
            1.0,
            0.8,
            0.6,
            GuidanceContext(level, STEPS, "denoise"),
            x,
            AnalyticModel.process,
            {},
        )
        if not rule.active(call.context):
            continue
        if case == "magnitude-aware":  # diffusers' torch.norm refuses 3 dims: its items flat
            flat = diffusers_guided(make(), scale, level, cond.flatten(1), uncond.flatten(1))
            expected = flat.reshape(cond.shape)
        else:
            expected = diffusers_guided(make(), scale, level, cond, uncond)
        torch.testing.assert_close(rule.combine(cond, uncond, call), expected)


def test_branch_choice_matches_diffusers_and_saves_the_unused_one(analytic: AnalyticModel) -> None:
    """A call evaluates the unconditional branch exactly when diffusers would need it, except at
    scale 0 for rules whose result there is the unconditional prediction (CFG, APG without
    rescale): then only that branch is evaluated."""
    cond, uncond = analytic.encode(["red"])
    x = torch.zeros(1, 2, dtype=torch.float64)
    for case, (rule, make) in CASES.items():
        reference = make()
        for level in range(STEPS):
            for scale in (0.0, 1.0, 3.0):
                guider = rule.bind(analytic, cond, uncond)
                guider(x, 2.0, scale, GuidanceContext(level, STEPS, "denoise"))
                reference.guidance_scale = scale
                reference.set_state(level, STEPS, None)
                needs_both = reference.num_conditions == 2
                only_uncond = scale == 0 and needs_both and rule.unconditional_at_zero()
                rows = (guider.counter.cond_rows, guider.counter.uncond_rows)
                if only_uncond:
                    assert rows == (0, 1), (case, level, scale)
                else:
                    assert rows == (1, int(needs_both)), (case, level, scale)
                assert guider.counter.model_calls == 1


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_zigzag_per_call_scales_reach_the_guider(
    analytic: AnalyticModel, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rule = CASES[case][0].model_copy(
        update={"start": 0.0, "stop": 1.0, "skip_unused_branches": False}
    )
    seen: list[float] = []
    original = type(rule).combine_predictions

    def spy(self: GuidanceRule, c: Prediction, u: Prediction, call: GuidanceCall) -> Prediction:
        seen.append(call.scale)
        return original(self, c, u, call)

    monkeypatch.setattr(type(rule), "combine_predictions", spy)
    diffusers_scales: list[float] = []
    if case != "cfg":
        cls = type(CASES[case][1]())
        forward = cls.forward

        def recorded(self: Any, *args: Any, **kwargs: Any) -> Any:
            diffusers_scales.append(self.guidance_scale)
            return forward(self, *args, **kwargs)

        monkeypatch.setattr(cls, "forward", recorded)
    sample(
        analytic,
        Zigzag(guidance=4.0, inversion_guidance=1.5),
        prompts=["red"],
        seeds=[0],
        schedule=Uniform(steps=5),
        guider=rule,
    )
    expected = [4.0, 1.5, 4.0] * 4 + [4.0]
    assert seen == expected
    if case != "cfg":
        assert diffusers_scales == expected


def test_apg_momentum_in_a_standard_run_is_diffusers_sequential_momentum(
    analytic: AnalyticModel,
) -> None:
    """Standard sampling with APG momentum equals a hand loop that feeds diffusers' guider one
    step after another, resetting its momentum at step 0 as its ``prepare_inputs`` does."""
    steps, scale = 6, 3.0
    rule = APG(momentum=-0.5, eta=0.0, norm_threshold=0.0)
    ours = sample(
        analytic,
        Standard(guidance=scale),
        prompts=["red", "blue"],
        seeds=[0, 1],
        schedule=Uniform(steps=steps),
        solver=DDIM(),
        guider=rule,
    )
    reference = AdaptiveProjectedGuidance(
        guidance_scale=scale,
        adaptive_projected_guidance_momentum=-0.5,
        eta=0.0,
        adaptive_projected_guidance_rescale=0.0,
    )
    cond, uncond = analytic.encode(["red", "blue"])
    sigmas = ours.sigmas
    x = torch.stack(
        [torch.randn(2, generator=torch.Generator().manual_seed(s)) for s in (0, 1)]
    ).to(torch.float32)
    for i in range(steps):
        reference.set_state(i, steps, None)
        if i == 0:
            reference.momentum_buffer = MomentumBuffer(-0.5)
        levels = torch.full((2,), float(sigmas[i]), dtype=torch.float64)
        pc, pu = analytic.predict(x, levels, cond), analytic.predict(x, levels, uncond)
        eps = reference.forward(pc.eps, pu.eps).pred
        alpha, s = analytic.process.coefficients(sigmas[i])
        x0 = (x.double() - s * eps.double()) / alpha
        a2, s2 = analytic.process.coefficients(sigmas[i + 1])
        x = (a2 * x0 + s2 * eps.double()).to(torch.float32)
    torch.testing.assert_close(ours.latents, x)


def test_apg_momentum_under_zigzag_follows_the_final_denoise_of_each_level(
    analytic: AnalyticModel,
) -> None:
    """Repeated levels replace their momentum term (the running average is the chain of the
    latest denoise at each level); inversions neither use nor change it."""
    steps, beta = 6, -0.5
    model = ModelSpy(analytic)
    cond, uncond = analytic.encode(["red", "green"])
    guider = APG(momentum=beta).bind(model, cond, uncond)  # type: ignore[arg-type]
    sigmas = Uniform(steps=steps).sigmas(analytic)
    path = SamplingPath(sigmas, analytic.process, {"main": guider}, DDIM())
    x = torch.randn(2, 2, generator=torch.Generator().manual_seed(5))
    Zigzag(guidance=4.0, inversion_guidance=2.0).sample(x, path)

    # source zags evaluate at level i + 1, before that level's denoise: the last call at each
    # level is that level's final denoise.
    last: dict[float, Prediction] = {}
    for call in model.calls:
        last[call.sigma] = call.prediction
    chain: list[torch.Tensor] = []
    naive = MomentumBuffer(beta)
    for i in range(steps):
        uncond_eps, cond_eps = last[float(sigmas[i])].eps.double().chunk(2)
        previous = chain[-1] if chain else 0  # rules combine in float64
        chain.append((cond_eps - uncond_eps) + beta * previous)
    for call in model.calls:  # every call, zags included, updating one running average
        u, c = call.prediction.eps.chunk(2)
        naive.update((c - u).double())
    kept = guider.state["momentum"]
    assert sorted(kept) == list(range(steps))
    for i in range(steps):
        torch.testing.assert_close(kept[i], chain[i])
    assert not torch.allclose(kept[steps - 1], naive.running_average)


def test_from_part_gives_a_consistent_pair_in_every_space() -> None:
    gen = torch.Generator().manual_seed(2)
    x, value = torch.randn(3, 4, generator=gen), torch.randn(3, 4, generator=gen)
    fallback = Prediction(torch.full((3, 4), 7.0), torch.full((3, 4), 9.0))
    for space in ("eps", "x0", "velocity"):
        for alpha, s in [(0.8, 0.6), (0.3, 0.7), (1.0, 2.5)]:
            pred = Prediction.from_part(space, value, x, alpha, s, fallback)  # type: ignore[arg-type]
            torch.testing.assert_close(pred.part(space), value)  # type: ignore[arg-type]
            torch.testing.assert_close(alpha * pred.x0 + s * pred.eps, x)
    at_noise = Prediction.from_part("eps", value, x, 0.0, 1.0, fallback)
    assert torch.equal(at_noise.x0, fallback.x0) and torch.equal(at_noise.eps, value)
    at_clean = Prediction.from_part("x0", value, x, 1.0, 0.0, fallback)
    assert torch.equal(at_clean.eps, fallback.eps) and torch.equal(at_clean.x0, value)
    flow_noise = Prediction.from_part("velocity", value, x, 0.0, 1.0, fallback)
    torch.testing.assert_close(flow_noise.eps, x)  # x is pure noise there


def test_fdg_equals_diffusers_at_the_level_scales_its_weights_give(analytic: AnalyticModel) -> None:
    """FDG's level scales are ``1 + weight * (scale - 1)``: at scale 10 the default weights are
    diffusers' default ``guidance_scales = [10, 5]``; zigzag's other scales reach it the same
    way. Needs kornia (diffusers builds the Laplacian pyramid with it)."""
    pytest.importorskip("kornia")
    from diffusers.guiders import FrequencyDecoupledGuidance as DiffusersFDG

    from zsampling.guiders import FrequencyDecoupledGuidance

    rule = FrequencyDecoupledGuidance(parallel_weights=[0.5, 1.0])
    gen = torch.Generator().manual_seed(4)
    cond, uncond, x = (torch.randn(2, 4, 16, 16, generator=gen) for _ in range(3))
    for scale, scales in [(10.0, [10.0, 5.0]), (2.5, [2.5, 1 + 4 / 9 * 1.5])]:
        call = GuidanceCall(
            scale, 1.0, 0.8, 0.6, GuidanceContext(2, STEPS, "denoise"), x, AnalyticModel.process, {}
        )
        reference = DiffusersFDG(guidance_scales=scales, parallel_weights=[0.5, 1.0])
        expected = reference.forward(cond, uncond).pred
        torch.testing.assert_close(rule.combine(cond, uncond, call), expected)
        assert not torch.allclose(expected, uncond + scale * (cond - uncond))  # not plain CFG
