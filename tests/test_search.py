"""Search over starting noises: best-of-N and zero-order search around any sampler, checked
against plain sampling from the noises their recipes name (bit for bit), batched, and run and
reproduced from a config file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hostile import DIGITS_TOML
from typer.testing import CliRunner

from zsampling import (
    BestOfN,
    DigitVerifier,
    ImplicitClassifier,
    PathSearch,
    Restart,
    Uniform,
    ZeroOrder,
    Zigzag,
    candidate_seed,
    initial_noise,
    sample,
    search_sample,
)
from zsampling.adapters.digits import DigitsAdapter
from zsampling.cli import app
from zsampling.core.errors import ComponentFault
from zsampling.core.verifier import verified
from zsampling.runs.outputs import read_metadata
from zsampling.search.zero_order import neighbour

PROMPTS, SEEDS = ["3", "8"], [5, 6]
SCHEDULE = Uniform(steps=4)
SAMPLER = Zigzag(guidance=2.0)


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    return DigitsAdapter().load()


def plain(model, prompt: str, seed: int, noise: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[no-untyped-def]
    return sample(
        model,
        SAMPLER,
        prompts=[prompt],
        seeds=[seed],
        schedule=SCHEDULE,
        noise=None if noise is None else noise[None],
    ).latents[0]


def searched(model, strategy, verifier=None, **options):  # type: ignore[no-untyped-def]
    """`search_sample` of the two items with zigzag, verified by the digits verifier."""
    verifier = verifier or DigitVerifier()
    return search_sample(
        model,
        SAMPLER,
        strategy,
        verifier,
        prompts=PROMPTS,
        seeds=SEEDS,
        schedule=SCHEDULE,
        **options,
    )


def test_one_candidate_is_plain_sampling(model) -> None:  # type: ignore[no-untyped-def]
    found = searched(model, BestOfN(candidates=1))
    expected = sample(model, SAMPLER, prompts=PROMPTS, seeds=SEEDS, schedule=SCHEDULE).latents
    assert torch.equal(found.latents, expected)
    assert [r["chosen_seed"] for r in found.records] == SEEDS


def test_best_of_n_keeps_the_best_candidate_and_its_seed_regenerates_it(model) -> None:  # type: ignore[no-untyped-def]
    found = searched(model, BestOfN(candidates=5), rows=3)
    for i, (prompt, seed) in enumerate(zip(PROMPTS, SEEDS, strict=True)):
        record = found.records[i]
        seeds = [candidate_seed(seed, k) for k in range(5)]
        assert len(set(seeds)) == 5 and seeds[0] == seed
        each = torch.stack([plain(model, prompt, s) for s in seeds])
        scores = verified(DigitVerifier(), model, each, [prompt] * 5)
        assert record["scores"] == pytest.approx(scores, abs=1e-6)
        best = max(range(5), key=lambda k: scores[k])
        assert record["chosen"] == best and record["chosen_seed"] == seeds[best]
        assert record["recipe"] == {"seed": seeds[best]}
        # another batch size than the search's: equal to float32 rounding (conv kernels differ)
        torch.testing.assert_close(found.latents[i], each[best], rtol=0, atol=1e-4)
        assert record["guided_calls"] == 5 * (4 + 2 * 3)  # five zigzag walks of 4 steps


def test_zero_order_recipe_rebuilds_the_chosen_noise(model) -> None:  # type: ignore[no-untyped-def]
    strategy = ZeroOrder(rounds=3, neighbours=2, step=0.7)
    found = searched(model, strategy)
    shape = model.latent_shape()
    moved = 0
    for i, prompt in enumerate(PROMPTS):
        record = found.records[i]
        assert record["candidates"] == 1 + 3 * 2
        assert record["score"] == max(record["scores"])
        recipe = record["recipe"]
        noise = initial_noise(shape, [recipe["seed"]])[0][0]
        for move in recipe.get("moves", []):
            noise = neighbour(noise, initial_noise(shape, [move["seed"]])[0][0], move["step"])
        moved += len(recipe.get("moves", []))
        again = plain(model, prompt, record["chosen_seed"], noise)
        torch.testing.assert_close(found.latents[i], again, rtol=0, atol=1e-4)
    assert moved > 0  # the search moved away from the first pivot at least once


def test_neighbours_are_standard_normal() -> None:
    pivot, direction = torch.randn(200_000), torch.randn(200_000)
    out = neighbour(pivot, direction, 0.5)
    assert abs(float(out.std()) - 1.0) < 0.01
    assert float(torch.corrcoef(torch.stack([out, pivot]))[0, 1]) == pytest.approx(
        1 / (1 + 0.25) ** 0.5, abs=0.01
    )


def test_candidates_are_batched_run_batch_size_rows_per_model_call(model) -> None:  # type: ignore[no-untyped-def]
    steps_calls = sample(model, SAMPLER, prompts=["3"], seeds=[0], schedule=SCHEDULE).counter
    together = searched(model, BestOfN(candidates=4), rows=8)
    assert together.counter.model_calls == steps_calls.model_calls  # all 8 rows in each call
    halves = searched(model, BestOfN(candidates=4), rows=4)
    assert halves.counter.model_calls == 2 * steps_calls.model_calls
    torch.testing.assert_close(halves.latents, together.latents, rtol=0, atol=1e-4)


def test_implicit_classifier_counts_its_own_evaluations(model) -> None:  # type: ignore[no-untyped-def]
    found = searched(model, BestOfN(candidates=2), ImplicitClassifier(positions=(0.4, 0.6)))
    assert [r["verifier_rows"] for r in found.records] == [2 * 2 * 2] * 2  # 2 cand x 2 levels x 2


def test_a_verifier_breaking_its_contract_is_named(model) -> None:  # type: ignore[no-untyped-def]
    class Short(ImplicitClassifier):
        def score(self, model, latents, prompts):  # type: ignore[no-untyped-def]
            return torch.zeros(latents.shape[0] - 1)

    with pytest.raises(ComponentFault, match="verifier 'implicit-classifier' returned 1 score"):
        search_sample(
            model,
            SAMPLER,
            BestOfN(candidates=1),
            Short(),
            prompts=["3", "8"],
            seeds=[0, 1],
            schedule=SCHEDULE,
        )


SEARCH_TOML = (
    DIGITS_TOML.replace('"standard"', '"zigzag"')
    + """
[search]
use = "{strategy}"
{settings}
[search.verifier]
use = "digit-verifier"
"""
)


def test_search_around_zigzag_runs_from_the_cli_and_reproduces(tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = tmp_path / "search.toml"
    text = SEARCH_TOML.format(out=out, strategy="zero-order", settings="rounds = 1\nneighbours = 2")
    config.write_text(text)
    result = CliRunner().invoke(app, ["run", str(config), "-q"])
    assert result.exit_code == 0, result.output
    outputs = sorted(out.glob("*.png"))
    assert len(outputs) == 2
    meta = read_metadata(outputs[0])
    assert meta["search"]["strategy"] == "zero-order" and meta["search"]["candidates"] == 3
    assert meta["config"]["search"] == {
        "use": "zero-order",
        "rounds": 1,
        "neighbours": 2,
        "step": 0.5,
        "evaluations": None,
        "verifier": {"use": "digit-verifier"},
    }
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert {x["search"]["chosen_seed"] for x in lines} == {
        read_metadata(p)["search"]["chosen_seed"] for p in outputs
    }
    again = CliRunner().invoke(app, ["reproduce", str(outputs[1])])
    assert again.exit_code == 0, again.output
    assert "bit for bit" in again.output


def test_search_config_errors_name_the_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    text = SEARCH_TOML.format(out=tmp_path / "o", strategy="best-of-n", settings="candidates = 0")
    config.write_text(text.replace('use = "digit-verifier"', 'use = "judge"'))
    result = CliRunner().invoke(app, ["run", str(config), "-q"])
    assert result.exit_code == 2
    assert "search.candidates" in result.output and "greater than or equal to 1" in result.output
    assert "search.verifier.use" in result.output and "implicit-classifier" in result.output


def test_a_budget_in_evaluations_buys_whole_candidates(model) -> None:  # type: ignore[no-untyped-def]
    walk = 4 + 2 * 3  # guided calls of one zigzag walk of 4 steps
    by_count = searched(model, BestOfN(candidates=3))
    by_budget = searched(model, BestOfN(evaluations=3 * walk + walk - 1))
    assert [r["candidates"] for r in by_budget.records] == [3, 3]
    assert [r["chosen"] for r in by_budget.records] == [r["chosen"] for r in by_count.records]
    torch.testing.assert_close(by_budget.latents, by_count.latents, rtol=0, atol=1e-4)
    # the implicit classifier's calls count too: two levels, one guided call each
    implicit = ImplicitClassifier(positions=(0.4, 0.6))
    paid = searched(model, BestOfN(evaluations=3 * (walk + 2)), implicit)
    assert [r["candidates"] for r in paid.records] == [3, 3]
    small = searched(model, BestOfN(evaluations=1))
    assert [r["candidates"] for r in small.records] == [1, 1]
    rounds = searched(model, ZeroOrder(neighbours=2, evaluations=5 * walk))
    assert [r["candidates"] for r in rounds.records] == [5, 5]


def test_eval_refuses_a_search_config_by_name(tmp_path: Path) -> None:
    config = Path(__file__).resolve().parents[1] / "examples" / "digits-search.toml"
    result = CliRunner().invoke(app, ["eval", str(config), "--out", str(tmp_path / "e")])
    assert result.exit_code == 2, result.output
    assert "search = 'best-of-n'" in result.output and "zsampling leaderboard" in result.output


def test_path_search_keeps_the_start_and_chooses_restarts_noise(model) -> None:  # type: ignore[no-untyped-def]
    restart = Restart(guidance=2.0, restart_min=0.3, restart_max=2.0, rounds=1)
    schedule = Uniform(steps=8)
    found = search_sample(
        model,
        restart,
        PathSearch(candidates=4),
        DigitVerifier(),
        prompts=PROMPTS,
        seeds=SEEDS,
        schedule=schedule,
    )
    for i, (prompt, seed) in enumerate(zip(PROMPTS, SEEDS, strict=True)):
        record = found.records[i]
        assert len(set(record["scores"])) == 4  # the paths differ: restart draws fresh noise
        assert record["recipe"] == {"seed": seed, "path_seed": record["chosen_seed"]}
        start = initial_noise(model.latent_shape(), [seed])[0]
        again = sample(
            model,
            restart,
            prompts=[prompt],
            seeds=[record["chosen_seed"]],
            noise=start,
            schedule=schedule,
        ).latents[0]
        torch.testing.assert_close(found.latents[i], again, rtol=0, atol=1e-4)
    # a deterministic route has one path: every candidate is the same sample
    one = searched(model, PathSearch(candidates=3))
    assert all(len(set(r["scores"])) == 1 for r in one.records)
