"""The leaderboard's search arms: search over standard sampling's starting noises at the cost of
a reflective method, against that method at equal evaluations.

For each rival (zigzag in its default inversion mode, and Z², at the testbed's guidance) a search
arm spends at most what the rival spends per item, and as nearly all of it as whole numbers
allow: ``N`` candidates of standard sampling at the testbed's guidance (``N`` the whole number
of testbed-length candidates nearest the rival's cost), each paying its steps and its
verifier's model calls (one guided call per two verifier rows), with the steps per candidate
the most that keep ``N`` of them within the rival's cost. A rival that costs what
standard sampling costs (Z²) leaves a search of one candidate, which is no search: it is
reported as skipped, with that reason. Every testbed declares its verifier
(`zsampling.evaluation.testbeds.Testbed.verifier`), never its judge; the judge grades the
search, and the verifier's own gain is reported beside the judge's (over-optimisation).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from zsampling.core.guidance import EvaluationCounter, counted
from zsampling.core.search import search_sample
from zsampling.core.verifier import Verifier, verified
from zsampling.evaluation.frontier import ALIGNMENT, Arm, percentile_interval
from zsampling.evaluation.testbeds import Testbed
from zsampling.metrics.sets import ClassSets, set_scores
from zsampling.samplers import Standard
from zsampling.search import BestOfN, ZeroOrder

RIVALS = {"zigzag": {"inversion": "source"}, "z2": {}}
"""The methods search is compared with at equal evaluations, and the settings that pick their
arm (the testbed's guidance besides)."""


@dataclass(frozen=True)
class SearchArmSpec:
    """A search arm to run: its strategy, candidates, and the rival arm whose cost it matches."""

    key: str
    label: str
    strategy: Any
    candidates: int
    steps: int
    rival: Arm


def verifier_calls(testbed: Testbed, verifier: Verifier) -> float:
    """Guided-call equivalents the verifier spends per candidate (two rows make one), measured
    on one item of noise."""
    model = testbed.model()
    counter = EvaluationCounter()
    prompts, seeds = testbed.items()
    from zsampling.core.sampling import initial_noise

    noise, _ = initial_noise(model.latent_shape(), seeds[:1], model.dtype)
    verified(verifier, counted(model, counter), noise, prompts[:1])
    return counter.rows / 2


def rivals(testbed: Testbed, methods: list[Arm]) -> list[Arm]:
    """The method arms search is matched against, in `RIVALS` order."""
    found, g = [], testbed.guidance
    for method, settings in RIVALS.items():
        for arm in methods:
            same = all(arm.settings.get(k) == v for k, v in settings.items())
            if arm.kind == "method" and arm.method == method and same and arm.guidance == g:
                found.append(arm)
                break
    return found


def search_specs(testbed: Testbed, methods: list[Arm]) -> tuple[list[SearchArmSpec], list[str]]:
    """Best-of-N and zero-order search at each rival's cost; and why a rival got none."""
    verifying = verifier_calls(testbed, testbed.verifier)
    per_candidate = testbed.steps + verifying
    specs, skipped = [], []
    for rival in rivals(testbed, methods):
        cost = rival.guided_calls_per_item
        n = round(cost / per_candidate)
        steps = int(cost / max(n, 1) - verifying)
        if n < 2 or steps < 1:
            skipped.append(
                f"search at the cost of {rival.label}: it spends "
                f"{rival.guided_calls_per_item:g} guided calls per item and one candidate costs "
                f"{per_candidate:g}, so a search there has one candidate (no search)"
            )
            continue
        for strategy in (BestOfN(candidates=n), ZeroOrder(rounds=1, neighbours=n - 1)):
            label = (
                f"{strategy.name} ({n} x {steps} steps, {testbed.verifier.name}), "
                f"at the cost of {rival.label}"
            )
            key = f"search-{strategy.name}-{n}x{steps}-{rival.key}"
            specs.append(SearchArmSpec(key, label, strategy, n, steps, rival))
    return specs, skipped


def run_search_arm(testbed: Testbed, spec: SearchArmSpec, baseline: Arm | None) -> Arm:
    """Search every item of ``testbed`` (standard sampling at its guidance), judge the choices,
    and record the verifier's view beside the judge's."""
    prompts, seeds = testbed.items()
    model = testbed.model()
    start = time.perf_counter()
    found = search_sample(
        model,
        Standard(guidance=testbed.guidance),
        spec.strategy,
        testbed.verifier,
        prompts=prompts,
        seeds=seeds,
        rows=len(prompts),
        schedule=testbed.schedule(spec.steps),
        solver=testbed.solver,
    )
    seconds = time.perf_counter() - start
    stats, features = testbed.judge(found.latents, prompts)
    calls = np.mean([r["guided_calls"] + r["verifier_rows"] / 2 for r in found.records])
    arm = Arm(
        key=spec.key,
        label=spec.label,
        kind="search",
        method=spec.strategy.name,
        settings={**spec.strategy.model_dump(mode="json"), "verifier": testbed.verifier.name},
        guidance=testbed.guidance,
        steps=spec.steps,
        stats=stats,
        features=features,
        prompts=prompts,
        guided_calls_per_item=float(calls),
        rows_per_item=float(
            np.mean([r["sampling_rows"] + r["verifier_rows"] for r in found.records])
        ),
        seconds_per_item=seconds / len(prompts),
        latents=found.latents,
    )
    arm.fidelity = set_scores(
        ClassSets.group(features, prompts), testbed.reference, testbed.per_class
    )
    arm.search = overoptimisation(found.records, arm, baseline)
    arm.search["rival"] = spec.rival.key
    return arm


def overoptimisation(
    records: list[dict[str, Any]], arm: Arm, baseline: Arm | None
) -> dict[str, Any]:
    """What the verifier says the search gained over the item's own noise (candidate 0, which is
    standard sampling at the same seed), and what the judge says: the gap between the two is
    verifier over-optimisation. ``baseline``: standard sampling at the testbed's guidance."""
    verifier_gain = float(np.mean([r["score"] - r["scores"][0] for r in records]))
    out: dict[str, Any] = {
        "verifier_score": float(np.mean([r["score"] for r in records])),
        "verifier_gain": verifier_gain,
        "changed": float(np.mean([r["chosen"] != 0 for r in records])),
    }
    if baseline is not None:
        moved = np.array([r["chosen"] != 0 for r in records])
        delta = arm.stats[ALIGNMENT] - baseline.stats[ALIGNMENT]
        out["judge_gain"] = float(delta.mean())
        out["judge_worse_when_changed"] = float((delta[moved] < 0).mean()) if moved.any() else None
    return out


def paired_difference(
    arm: Arm, rival: Arm, replicates: int = 300, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Per-item differences (search minus rival: same prompts and seeds) of each judged statistic,
    with a 95% bootstrap interval over items resampled within prompts."""
    rng = np.random.default_rng(seed)
    rows = np.asarray(arm.prompts)
    groups = [np.nonzero(rows == p)[0] for p in dict.fromkeys(arm.prompts)]
    out = {}
    for name in arm.stats:
        d = arm.stats[name] - rival.stats[name]
        draws = [
            np.concatenate([d[g[rng.integers(0, len(g), len(g))]] for g in groups]).mean()
            for _ in range(replicates)
        ]
        out[name] = {"value": float(d.mean()), "ci95": percentile_interval(np.array(draws))}
    return out


def search_arms(
    testbed: Testbed, methods: list[Arm], sweep: list[Arm], say: Any = None
) -> tuple[list[Arm], list[tuple[str, str]]]:
    """Every search arm of ``testbed`` (run, judged, compared with its rival), and the
    ``(label, reason)`` of each rival no search could match."""
    specs, refused = search_specs(testbed, methods)
    baseline = next((a for a in sweep if a.guidance == testbed.guidance), None)
    arms = []
    for spec in specs:
        if say is not None:
            say(f"{testbed.name}: {spec.label}")
        arm = run_search_arm(testbed, spec, baseline)
        arm.search["vs_rival"] = paired_difference(arm, spec.rival)
        arms.append(arm)
    return arms, [("search", reason) for reason in refused]
