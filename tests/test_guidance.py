"""The guider evaluates only the branches a scale needs, in one batched call, and counts it."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import torch
from hostile import cut_guider
from pydantic import BaseModel
from spies import ModelSpy

from zsampling import (
    CFG,
    DDIM,
    GuidanceCall,
    GuidanceRule,
    InvalidArgument,
    Prediction,
    SamplingPath,
    Standard,
    Uniform,
    Zigzag,
    sample,
)
from zsampling.adapters.analytic import AnalyticModel
from zsampling.core.errors import RunFailure


def branches(model: AnalyticModel, x: torch.Tensor, sigma: float):  # type: ignore[no-untyped-def]
    cond, uncond = model.encode(["red", "blue"])
    sig = torch.full((2,), sigma, dtype=torch.float64)
    return model.predict(x, sig, cond), model.predict(x, sig, uncond)


@pytest.mark.parametrize(
    ("scale", "calls", "cond_rows", "uncond_rows"), [(0.0, 1, 0, 2), (1.0, 1, 2, 0), (3.5, 1, 2, 2)]
)
def test_branches_evaluated_per_scale(
    analytic: AnalyticModel, scale: float, calls: int, cond_rows: int, uncond_rows: int
) -> None:
    x = torch.tensor([[0.2, 0.9], [-1.0, 0.1]], dtype=torch.float64)
    guider = CFG().bind(analytic, *analytic.encode(["red", "blue"]))
    pred = guider(x, 1.3, scale)
    c = guider.counter
    assert (c.model_calls, c.cond_rows, c.uncond_rows) == (calls, cond_rows, uncond_rows)
    cond, uncond = branches(analytic, x, 1.3)
    torch.testing.assert_close(pred.eps, uncond.eps + scale * (cond.eps - uncond.eps))
    torch.testing.assert_close(pred.x0, uncond.x0 + scale * (cond.x0 - uncond.x0))


def test_both_branches_always_when_asked(analytic: AnalyticModel) -> None:
    x = torch.zeros(2, 2, dtype=torch.float64)
    guider = CFG(skip_unused_branches=False).bind(analytic, *analytic.encode(["red", "blue"]))
    a = guider(x, 2.0, 0.0)
    assert (guider.counter.cond_rows, guider.counter.uncond_rows, guider.counter.rows) == (2, 2, 4)
    b = CFG().bind(analytic, *analytic.encode(["red", "blue"]))(x, 2.0, 0.0)
    torch.testing.assert_close(a.eps, b.eps)


def test_guided_pair_stays_consistent(analytic: AnalyticModel) -> None:
    x = torch.tensor([[0.5, -0.5], [1.5, 0.3]], dtype=torch.float64)
    pred = CFG().bind(analytic, *analytic.encode(["red", "green"]))(x, 0.8, 4.0)
    alpha, s = analytic.process.coefficients(torch.tensor(0.8, dtype=torch.float64))
    torch.testing.assert_close(alpha * pred.x0 + s * pred.eps, x)


def test_negative_prompt_is_the_unconditional_branch(analytic: AnalyticModel) -> None:
    _, uncond = analytic.encode(["red"], ["blue"])
    assert uncond["label"].tolist() == [2]


def test_no_uncond_branch_needs_scale_one(analytic: AnalyticModel) -> None:
    cond, _ = analytic.encode(["red"])
    guider = CFG().bind(analytic, cond, None)
    guider(torch.zeros(1, 2), 1.0, 1.0)
    with pytest.raises(InvalidArgument, match=r"guidance = 2\.0"):
        guider(torch.zeros(1, 2), 1.0, 2.0)


# --- the guider contract, as a plugin author meets it ----------------------------------------


class SumOfBranches(GuidanceRule):
    """A rule plugin in five lines: only its combine."""

    name: ClassVar[str] = "sum-of-branches"

    def combine(self, cond: torch.Tensor, uncond: torch.Tensor, call: GuidanceCall) -> torch.Tensor:
        return uncond + call.scale * (cond - uncond) + 0.0 * call.sigma


class Unbatched(BaseModel):
    """A guider written against the protocol alone: two unbatched model calls, no counting."""

    name: ClassVar[str] = "unbatched"

    def bind(self, model: Any, cond: Any, uncond: Any, counter: Any = None) -> Any:
        levels = lambda x, sigma: torch.full((x.shape[0],), sigma, dtype=torch.float64)  # noqa: E731

        def guider(x: torch.Tensor, sigma: float, scale: float, context: Any = None) -> Prediction:
            c = model.predict(x, levels(x, sigma), cond)
            u = model.predict(x, levels(x, sigma), uncond)
            return u.guided(c, scale)

        return guider


def test_costs_are_counted_whoever_wrote_the_guider(analytic: AnalyticModel) -> None:
    """The core counts guided calls, model calls and rows: a rule guider makes one batched call
    per guided call; a protocol-only guider that counts nothing is still counted right."""
    run = {"prompts": ["red", "blue"], "seeds": [0, 1], "schedule": Uniform(steps=5)}
    sampler = Zigzag(guidance=3.0, inversion_guidance=0.5)
    guided = 5 + 2 * 4
    rule = sample(analytic, sampler, guider=SumOfBranches(), **run)  # type: ignore[arg-type]
    assert rule.counter.as_dict() == {
        "guided_calls": guided,
        "model_calls": guided,
        "rows": 4 * guided,
        "cond_rows": 2 * guided,
        "uncond_rows": 2 * guided,
        "perturbed_rows": 0,
    }
    plain = sample(analytic, sampler, guider=Unbatched(), **run)  # type: ignore[arg-type]
    assert (plain.counter.guided_calls, plain.counter.model_calls, plain.counter.rows) == (
        guided,
        2 * guided,
        4 * guided,
    )
    torch.testing.assert_close(plain.latents, rule.latents)
    cfg = sample(analytic, sampler, guider=CFG(), **run)  # type: ignore[arg-type]
    torch.testing.assert_close(cfg.latents, rule.latents)


class NotCallable(BaseModel):
    name: ClassVar[str] = "not-callable"

    def bind(self, model: Any, cond: Any, uncond: Any, counter: Any = None) -> Any:
        return {"cond": cond}


class OldSignature(BaseModel):
    name: ClassVar[str] = "old-signature"

    def bind(self, model: Any, cond: Any, uncond: Any, counter: Any = None) -> Any:
        return lambda x, sigma, scale: model.predict(x, sigma, cond)


class ReturnsTensor(BaseModel):
    name: ClassVar[str] = "returns-tensor"

    def bind(self, model: Any, cond: Any, uncond: Any, counter: Any = None) -> Any:
        return lambda x, sigma, scale, context=None: x


class CutGuider(BaseModel):
    """Guided predictions cut to ``cut`` columns: (1, 0) does not broadcast against (1, 2)."""

    name: ClassVar[str] = "cut-guider"
    cut: int = 0

    def bind(self, model: Any, cond: Any, uncond: Any, counter: Any = None) -> Any:
        return cut_guider(model, cond, uncond, counter, self.cut)


class CutRule(GuidanceRule):
    """A combine rule whose result is cut to ``cut`` columns."""

    name: ClassVar[str] = "cut-rule"
    cut: int = 0

    def combine(self, cond: torch.Tensor, uncond: torch.Tensor, call: GuidanceCall) -> torch.Tensor:
        return (uncond + call.scale * (cond - uncond))[..., : self.cut]


@pytest.mark.parametrize(
    ("guider", "message"),
    [
        (
            NotCallable(),
            "guider 'not-callable' does not follow the guider contract: bind() "
            "returned dict, which is not callable",
        ),
        (
            OldSignature(),
            "guider 'old-signature' does not follow the guider contract: bind() "
            "returned function, callable as (x, sigma, scale); the path calls it as "
            "guider(x, sigma, scale, context=None)",
        ),
        (
            ReturnsTensor(),
            "guider 'returns-tensor' (class test_guidance.ReturnsTensor) returned Tensor, not "
            "a zsampling Prediction(x0, eps) (model 'main')",
        ),
        *[
            (
                CutGuider(cut=cut),
                f"guider 'cut-guider' (class test_guidance.CutGuider) returned a guided "
                f"prediction whose x0 is (1, {cut}); expected (1, 2), the latent's shape "
                "(model 'main')",
            )
            for cut in (0, 1)
        ],
        *[
            (
                CutRule(cut=cut),
                f"guider 'cut-rule' (class test_guidance.CutRule) combine() returned (1, {cut}); "
                "expected (1, 2), the latent's shape",
            )
            for cut in (0, 1)
        ],
    ],
    ids=[
        "not-callable",
        "old-signature",
        "returns-tensor",
        "cut-guider-0",
        "cut-guider-1",
        "cut-rule-0",
        "cut-rule-1",
    ],
)
def test_a_guider_breaking_the_contract_is_named(
    analytic: AnalyticModel, guider: Any, message: str
) -> None:
    with pytest.raises(RunFailure) as info:
        sample(
            analytic,
            Standard(guidance=2.0),
            prompts=["red"],
            schedule=Uniform(steps=3),
            guider=guider,
        )
    assert str(info.value) == message


def test_a_move_may_name_the_conditioning(analytic: AnalyticModel) -> None:
    """``conditioning="uncond"`` makes the negative prompt the positive branch of that move:
    at scale 1 it is the unconditional prediction; an unknown name is refused."""
    cond, uncond = analytic.encode(["red"], ["blue"])
    sigmas = Uniform(steps=4).sigmas(analytic)
    path = SamplingPath(
        sigmas, analytic.process, {"main": CFG().bind(analytic, cond, uncond)}, DDIM()
    )
    x = torch.tensor([[0.3, -0.2]])
    negative = path.predict(x, 1, 1.0, conditioning="uncond")
    direct = analytic.predict(x, torch.full((1,), float(sigmas[1]), dtype=torch.float64), uncond)
    torch.testing.assert_close(negative.eps, direct.eps)
    with pytest.raises(InvalidArgument, match=r"conditioning = 'style' is invalid: one of"):
        path.denoise(x, 0, 2.0, conditioning="style")


class EmbeddedScale(ModelSpy):
    """A model whose network takes the guidance scale (FLUX-dev style): records each scale."""

    def __init__(self, model: AnalyticModel) -> None:
        super().__init__(model)
        self.scales: list[float] = []

    def predict(self, x: torch.Tensor, sigma: torch.Tensor, cond: Any) -> Prediction:
        raise AssertionError("a guidance-embedding model gets predict_guided")

    def predict_guided(
        self, x: torch.Tensor, sigma: torch.Tensor, cond: Any, scale: float
    ) -> Prediction:
        self.scales.append(scale)
        return self.model.predict(x, sigma, cond)


def test_a_model_that_embeds_the_scale_gets_each_calls_scale(analytic: AnalyticModel) -> None:
    model = EmbeddedScale(analytic)
    result = sample(
        model,  # type: ignore[arg-type]
        Zigzag(guidance=3.5, inversion_guidance=1.0),
        prompts=["red"],
        schedule=Uniform(steps=4),
    )
    assert model.scales == [3.5, 1.0, 3.5] * 3 + [3.5]
    c = result.counter
    assert (c.guided_calls, c.model_calls, c.rows, c.uncond_rows) == (10, 10, 10, 0)
