"""The leaderboard's search arms: every testbed declares a verifier that is not its judge, and a
search arm spends what its rival spends, judged by the judge and compared item by item."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from zsampling.core.verifier import Verifier, verified
from zsampling.evaluation.frontier import ALIGNMENT, run_arm, sweep_arms
from zsampling.evaluation.search_arms import search_arms, verifier_calls
from zsampling.evaluation.testbeds import TESTBEDS, analytic_testbed
from zsampling.samplers import Z2, Zigzag

pytestmark = pytest.mark.usefixtures("single_thread")

JUDGE_METRICS = {"class-posterior", "log-density", "digit-alignment", "digit-accuracy"}
"""The metrics that are the testbeds' judges under another name."""


def _unjudgeable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every built-in judge raise when asked (the analytic posterior, the CNN judge, the
    shapes rules)."""
    import zsampling.shapes.scoring
    from zsampling.adapters.analytic import GaussianMixture
    from zsampling.digits.judge import Judge

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the verifier asked the judge")

    monkeypatch.setattr(GaussianMixture, "class_posterior", refuse)
    monkeypatch.setattr(zsampling.shapes.scoring, "judge", refuse)
    for name in ("logits", "probabilities", "features", "typicality"):
        monkeypatch.setattr(Judge, name, refuse)


@torch.no_grad()
def _as_latents(model: object, samples: torch.Tensor) -> torch.Tensor:
    """Real items as the model's latents: a latent-diffusion testbed's real data are images,
    encoded by the model's own VAE (the mean, scaled as the pipeline scales it)."""
    pipeline = getattr(model, "pipeline", None)
    if pipeline is None or getattr(pipeline, "vae", None) is None:
        return samples.to(model.dtype)  # type: ignore[attr-defined]
    vae = pipeline.vae
    latents = vae.encode(samples.to(vae.dtype)).latent_dist.mean * vae.config.scaling_factor
    return latents.to(model.dtype)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(TESTBEDS))
def test_no_builtin_testbed_uses_its_judge_as_its_verifier(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    testbed = TESTBEDS[name]()
    verifier = testbed.verifier
    assert isinstance(verifier, Verifier) and verifier.name not in JUDGE_METRICS
    real = testbed.real
    judged, _ = testbed.judge(real.samples, real.prompts)
    model = testbed.model()
    _unjudgeable(monkeypatch)
    scores = verified(verifier, model, _as_latents(model, real.samples), real.prompts)
    # not the judge's opinion under another scale: its ranking of real items differs
    assert spearmanr(scores, judged[ALIGNMENT]).statistic < 0.99


def test_search_arms_spend_the_rivals_cost_and_are_compared_item_by_item() -> None:
    testbed = analytic_testbed(items_per_prompt=8)
    testbed.sweep = [1.0, 2.0, 4.0]
    g = testbed.guidance
    rival = run_arm(testbed, "zigzag-g", "zigzag", "method", Zigzag(guidance=g))
    cheap = run_arm(testbed, "z2-g", "z2", "method", Z2(guidance=g))
    sweep = sweep_arms(testbed)
    arms, refused = search_arms(testbed, [rival, cheap], sweep)
    assert [a.method for a in arms] == ["best-of-n", "zero-order"]
    assert len(refused) == 1 and "z2" in refused[0][1] and "one candidate" in refused[0][1]
    per_candidate = testbed.steps + verifier_calls(testbed, testbed.verifier)
    assert verifier_calls(testbed, testbed.verifier) == 3  # three levels, two rows each
    for arm in arms:
        assert rival.guided_calls_per_item - per_candidate / 3 < arm.guided_calls_per_item
        assert arm.guided_calls_per_item <= rival.guided_calls_per_item
        diff = arm.stats[ALIGNMENT] - rival.stats[ALIGNMENT]
        paired = arm.search["vs_rival"][ALIGNMENT]
        assert paired["value"] == pytest.approx(float(diff.mean()))
        lo, hi = paired["ci95"]
        assert lo <= paired["value"] <= hi
        assert arm.search["verifier_gain"] >= 0  # every search tries the item's own noise
        assert 0 <= arm.search["changed"] <= 1 and "judge_gain" in arm.search
        judged, _ = testbed.judge(arm.latents, arm.prompts)
        assert np.array_equal(judged[ALIGNMENT], arm.stats[ALIGNMENT])
        assert isinstance(arm.latents, torch.Tensor)


def test_the_search_table_answers_from_the_results_files() -> None:
    from zsampling.evaluation.search_report import search_table, verdict

    assert verdict({"value": 0.2, "ci95": [0.1, 0.3]}, "zigzag") == "search"
    assert verdict({"value": -0.2, "ci95": [-0.3, -0.1]}, "zigzag") == "zigzag"
    assert verdict({"value": 0.1, "ci95": [-0.1, 0.3]}, "zigzag") == "no difference at this size"
    rival = {"key": "zz", "label": "zigzag (source), g=2", "guided_calls_per_item": 58.0}
    arm = {
        "key": "s",
        "label": "best-of-n (3 x 16 steps, implicit-classifier), at the cost of zigzag",
        "guided_calls_per_item": 57.0,
        "search": {
            "rival": "zz",
            "verifier_gain": 0.02,
            "judge_gain": -0.004,
            "judge_worse_when_changed": 0.63,
            "vs_rival": {
                "logp": {"value": -0.1, "ci95": [-0.14, -0.07]},
                "accuracy": {"value": 0.0, "ci95": [0.0, 0.0]},
            },
        },
    }
    refused = {"label": "search", "reason": "search at the cost of z2: one candidate"}
    table = search_table([{"testbed": "analytic", "arms": [rival, arm], "skipped": [refused]}])
    rows = table.splitlines()
    assert rows[2] == (
        "| analytic | best-of-n (3 x 16 steps, implicit-classifier) | 57 (58, zigzag (source), "
        "g=2) | -0.1 [-0.14, -0.07] | 0 [0, 0] | 0.02 / -0.004 | 63% | zigzag (source) |"
    )
    assert (
        rows[3]
        == "| analytic | search at the cost of z2: one candidate | | | | | | no search arm |"
    )
    assert "no search arms yet" in search_table([{"testbed": "x", "arms": [rival]}])
