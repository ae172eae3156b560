"""Verifiers: the implicit classifier against the analytic model's exact posterior, the digits
verifier rebuilt bit for bit and kept apart from the judge, ImageReward's refusals, and the kind
in the plugin listing."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from typer.testing import CliRunner

from zsampling import ClassPosterior, DigitVerifier, ImageReward, ImplicitClassifier
from zsampling.adapters.analytic import AnalyticModel, demo_mixture
from zsampling.adapters.digits import DigitsAdapter
from zsampling.cli import app
from zsampling.core.errors import InvalidArgument
from zsampling.verifiers.implicit import noise_levels


@pytest.fixture(scope="module")
def analytic() -> AnalyticModel:
    return AnalyticModel(demo_mixture())


def exact_samples(model: AnalyticModel, n: int) -> torch.Tensor:
    x = model.mixture.sample(n, torch.Generator().manual_seed(0))
    return x.reshape(n, *model.latent_shape()).to(model.dtype)


def test_implicit_classifier_ranks_like_the_exact_posterior(analytic: AnalyticModel) -> None:
    x = exact_samples(analytic, 400)
    for prompt in ("red", "blue"):
        scores = ImplicitClassifier().score(analytic, x, [prompt] * 400).numpy()
        posterior = ClassPosterior().score(analytic, x, [prompt] * 400).numpy()
        assert spearmanr(scores, np.log(posterior)).statistic > 0.9


def test_implicit_classifier_is_the_denoising_error_gap(analytic: AnalyticModel) -> None:
    """One level by hand, the two branches predicted in separate calls."""
    x = exact_samples(analytic, 5)
    prompts = ["red", "green", "blue", "red", "green"]
    verifier = ImplicitClassifier(positions=(0.4,), seed=3)
    (sigma,) = noise_levels(analytic, (0.4,))
    lo, hi = analytic.sigma_range()
    assert sigma == pytest.approx(lo**0.6 * hi**0.4)
    eps = torch.randn(x.shape[1:], generator=torch.Generator().manual_seed(3)).double()
    alpha, s = analytic.process.point(sigma)
    xt = alpha * x + s * eps
    cond, uncond = analytic.encode(prompts)
    levels = torch.full((5,), sigma, dtype=torch.float64)
    err_c = (analytic.predict(xt, levels, cond).eps - eps).pow(2).mean(1)
    err_u = (analytic.predict(xt, levels, uncond).eps - eps).pow(2).mean(1)
    torch.testing.assert_close(verifier.score(analytic, x, prompts), err_u - err_c)


def test_digit_verifier_ships_what_its_script_trains(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from zsampling.digits.verifier import PACKAGED, train_verifier

    meta = train_verifier(tmp_path, seed=0)
    shipped, rebuilt = (load_file(f / "verifier.safetensors") for f in (PACKAGED, tmp_path))
    assert all(torch.equal(shipped[k], rebuilt[k]) for k in shipped)
    assert json.loads((PACKAGED / "verifier.json").read_text()) == meta
    assert 0.9 < meta["accuracy"] < 1.0


def test_digit_verifier_is_not_the_judge() -> None:
    """Other data (the judge's calibration digits, never its training digits), another
    architecture, and not the same opinions: it disagrees with the judge on held-out digits."""
    from zsampling.digits.data import held_out_halves, judge_splits
    from zsampling.digits.judge import judge
    from zsampling.digits.verifier import log_probabilities

    fit, calibration = judge_splits()
    assert len(fit.labels) + len(calibration.labels) == 1437
    _, real = held_out_halves()
    ours = log_probabilities(real.images).exp().numpy()
    theirs = judge().probabilities(real.images)
    assert np.abs(ours - theirs).max() > 0.3


def test_digit_verifier_scores_log_probability_of_every_part() -> None:
    from zsampling.digits.data import held_out_halves
    from zsampling.digits.verifier import log_probabilities

    _, real = held_out_halves()
    model = DigitsAdapter().load()
    images, labels = real.images[:6], real.labels[:6]
    prompts = [str(int(d)) for d in labels]
    expected = log_probabilities(images)[torch.arange(6), labels]
    torch.testing.assert_close(DigitVerifier().score(model, images, prompts), expected)


def test_digit_verifier_refuses_other_models(analytic: AnalyticModel) -> None:
    with pytest.raises(
        InvalidArgument, match=r"search\.verifier\.use = 'digit-verifier' .*a verifier for this"
    ):
        DigitVerifier().score(analytic, torch.zeros(1, 2), ["red"])


def test_image_reward_says_what_is_missing_and_downloads_nothing(tmp_path: Path) -> None:
    model = DigitsAdapter().load()
    x = torch.zeros(1, 1, 8, 8)
    missing = ImageReward(checkpoint=str(tmp_path / "ImageReward.pt"), med_config="x.json")
    with pytest.raises(InvalidArgument, match=r"search\.verifier\.checkpoint = .*a local file"):
        missing.score(model, x, ["1"])
    for name in ("ImageReward.pt", "med_config.json"):
        (tmp_path / name).write_bytes(b"{}")
    there = ImageReward(
        checkpoint=str(tmp_path / "ImageReward.pt"), med_config=str(tmp_path / "med_config.json")
    )
    if importlib.util.find_spec("ImageReward") is None:  # where it is installed, it would load
        with pytest.raises(InvalidArgument, match=r"needs the ImageReward package \(pip install"):
            there.score(model, x, ["1"])


def test_plugins_list_the_verifier_and_search_kinds() -> None:
    result = CliRunner().invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    (builtin,) = [p for p in json.loads(result.output) if p["name"] == "zsampling"]
    by_kind: dict[str, list[str]] = {}
    for c in builtin["components"]:
        by_kind.setdefault(c["kind"], []).append(c["name"])
    assert {"implicit-classifier", "digit-verifier"} <= set(by_kind["verifier"])
    assert by_kind["search"] == ["best-of-n", "zero-order", "path-search"]
