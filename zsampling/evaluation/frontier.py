"""The frontier protocol: place a method on the alignment-fidelity curve standard CFG draws.

GA-Eval (arXiv 2602.22570) warns that many guidance methods only act like a larger CFG scale.
So a method is not compared with standard sampling at its own scale, but with standard CFG at the
scale that reaches the *same alignment*:

1. **The curve.** Standard sampling at every scale of the testbed's sweep, on the same items
   (prompt and noise) as every other arm.
2. **The sanity gate.** A fidelity metric may rank methods only if the held-out real arm scores
   better on it than every arm of the sweep. A metric that ranks real data below generated data
   (a per-sample typicality score does, since it rewards prototypical samples) is reported but
   never ranks.
3. **Placement.** A method's mean alignment (``logp``: the judge's log-probability of the whole
   prompt, which keeps moving where accuracy has reached 100%) is inverted on the sweep's
   alignment curve (made monotone, linear between scales) to its **equivalent CFG scale**; the
   sweep's fidelity at that scale (linear between scales) is what the method's fidelity is
   compared with: the **fidelity difference at equal alignment**. A method beyond the sweep's
   alignment range is not placed (no extrapolation).
4. **Intervals.** Items are resampled with replacement within each prompt (a stratified, paired
   bootstrap: item ``k`` has the same prompt and noise in every arm, and every item has its own
   noise), and everything above is recomputed per replicate; 95% percentile intervals.

Only ``energy`` (class-conditional energy distance, unbiased) is bootstrapped, as it is cheap to
recompute from precomputed distances; the pooled measures are point estimates.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import Tensor

from zsampling.core.cfg import CFG
from zsampling.core.extras import extra
from zsampling.core.guidance import GuiderComponent
from zsampling.core.model import ModelAdapter
from zsampling.core.sampler import ReflectiveSampler, main_scale
from zsampling.core.sampling import sample
from zsampling.evaluation.testbeds import Testbed
from zsampling.metrics.sets import LOWER_IS_BETTER, RANKABLE, ClassSets, better, set_scores
from zsampling.samplers import Standard

with extra("eval", "The frontier evaluation"):
    from scipy.spatial.distance import cdist

ALIGNMENT = "logp"
RANKING = "energy"
CONFIDENCE = 0.95


@dataclass
class Arm:
    """One set of samples (or the held-out real set) with its judged statistics."""

    key: str
    label: str
    kind: str  # "cfg" (the sweep), "method", "equal-evals", "real"
    method: str
    settings: dict[str, Any]
    guidance: float | None
    steps: int | None
    stats: dict[str, np.ndarray]
    features: np.ndarray
    prompts: list[str]
    guided_calls_per_item: float = 0.0
    rows_per_item: float = 0.0
    seconds_per_item: float = 0.0
    fidelity: dict[str, float] = field(default_factory=dict)
    latents: Tensor | None = None
    search: dict[str, Any] = field(default_factory=dict)
    """A search arm's verifier scores and its comparison with its rival (`search_arms`)."""

    @property
    def alignment(self) -> float:
        return float(self.stats[ALIGNMENT].mean())


def run_arm(
    testbed: Testbed,
    key: str,
    label: str,
    kind: str,
    sampler: ReflectiveSampler,
    *,
    guider: GuiderComponent | None = None,
    steps: int | None = None,
    extra_models: Mapping[str, ModelAdapter] | None = None,
) -> Arm:
    """Sample every item of ``testbed`` with ``sampler`` (one batch), judge and score it."""
    prompts, seeds = testbed.items()
    schedule = testbed.schedule(steps)
    model = testbed.model()  # loaded on first use: not part of any arm's sampling time
    start = time.perf_counter()
    result = sample(
        model,
        sampler,
        prompts=prompts,
        seeds=seeds,
        schedule=schedule,
        guider=guider or CFG(),
        solver=testbed.solver,
        extra_models=extra_models,
    )
    seconds = time.perf_counter() - start
    stats, features = testbed.judge(result.latents, prompts)
    arm = Arm(
        key=key,
        label=label,
        kind=kind,
        method=getattr(sampler, "name", type(sampler).__name__),
        settings=sampler.model_dump(mode="json") if hasattr(sampler, "model_dump") else {},
        guidance=main_scale(sampler),
        steps=int(schedule.steps),
        stats=stats,
        features=features,
        prompts=prompts,
        # the batch shares every call: calls per item are the calls of the batched run
        guided_calls_per_item=float(result.counter.guided_calls),
        rows_per_item=result.counter.rows / len(prompts),
        seconds_per_item=seconds / len(prompts),
        latents=result.latents,
    )
    arm.fidelity = set_scores(
        ClassSets.group(features, prompts), testbed.reference, testbed.per_class
    )
    return arm


def real_arm(testbed: Testbed) -> Arm:
    """The held-out real data, judged and scored exactly as a generated arm."""
    real = testbed.real
    stats, features = testbed.judge(real.samples, real.prompts)
    arm = Arm(
        "real", "held-out real data", "real", "real", {}, None, None, stats, features, real.prompts
    )
    arm.fidelity = set_scores(
        ClassSets.group(features, real.prompts), testbed.reference, testbed.per_class
    )
    return arm


def sweep_arms(testbed: Testbed) -> list[Arm]:
    """Standard CFG at every scale of the testbed's sweep."""
    return [
        run_arm(testbed, f"cfg-{s:g}", f"standard, CFG {s:g}", "cfg", Standard(guidance=s))
        for s in testbed.sweep
    ]


def resampled_scores(arm: Arm, testbed: Testbed, rng: np.random.Generator) -> dict[str, float]:
    """The arm's set-level scores on its items resampled with replacement within each prompt."""
    rows = np.asarray(arm.prompts)
    picks = [
        rng.choice(np.nonzero(rows == p)[0], size=int((rows == p).sum()))
        for p in dict.fromkeys(arm.prompts)
    ]
    idx = np.concatenate(picks)
    # the original item of each row: a repeat is not an independent pair (see ClassSets)
    sets = ClassSets.group(arm.features[idx], [arm.prompts[i] for i in idx], idx[:, None])
    return set_scores(sets, testbed.reference, testbed.per_class)


def sanity_gate(
    testbed: Testbed, real: Arm, sweep: Sequence[Arm], replicates: int = 100, seed: int = 1
) -> dict[str, dict[str, Any]]:
    """Per fidelity metric: is held-out real data scored better than every CFG arm?

    A CFG arm *beats* real data when it scores better and the bootstrap interval (95%) of the
    difference excludes zero; the metric passes when no arm beats real data. (A perfect model is
    as good as real data: on the analytic testbed CFG 1 *is* the data distribution, and sampling
    noise decides which of the two scores better. What the gate must catch is a metric that
    systematically prefers generated samples to real ones.)
    """
    rng = np.random.default_rng(seed)
    draws = [[resampled_scores(a, testbed, rng) for a in [real, *sweep]] for _ in range(replicates)]
    gate = {}
    for metric in RANKABLE:
        sign = -1.0 if LOWER_IS_BETTER.get(metric, False) else 1.0
        beaten_by, outscored = [], 0
        for k, arm in enumerate(sweep, start=1):
            # positive: real data better
            diffs = np.array([sign * (d[0][metric] - d[k][metric]) for d in draws])
            diffs = diffs[np.isfinite(diffs)]  # degenerate resamples (one item repeated) aside
            if better(metric, real.fidelity[metric], arm.fidelity[metric]):
                outscored += 1
            if len(diffs) and np.percentile(diffs, 100 * (1 + CONFIDENCE) / 2) < 0:
                beaten_by.append(arm.guidance)
        best = min(sweep, key=lambda a: -sign * a.fidelity[metric])
        gate[metric] = {
            "passes": not beaten_by,
            "real": real.fidelity[metric],
            "best_cfg": best.fidelity[metric],
            "best_cfg_scale": best.guidance,
            "real_scores_better_than": outscored,
            "of_arms": len(sweep),
            "significantly_beaten_by_scales": beaten_by,
        }
    return gate


def monotone_curve(scales: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sweep's alignment as a non-decreasing function of scale (sorted by scale)."""
    order = np.argsort(scales)
    return scales[order], np.maximum.accumulate(values[order])


def _pchip(xs: np.ndarray, ys: np.ndarray, at: float) -> float:
    """Shape-preserving cubic interpolation (scipy's PCHIP) through strictly increasing ``xs``.

    Linear interpolation between sweep points is biased on a convex curve (fidelity against
    scale is): a method exactly on the CFG curve would be called better than CFG. PCHIP follows
    the curvature without overshooting (tests/test_frontier.py measures the difference).
    """
    with extra("eval", "The frontier evaluation"):
        from scipy.interpolate import PchipInterpolator

    keep = np.concatenate([[True], np.diff(xs) > 0])  # flat stretches of a monotone curve
    if keep.sum() < 2:
        return float(ys[0])
    return float(PchipInterpolator(xs[keep], ys[keep])(at))


def equivalent_scale(scales: np.ndarray, alignment: np.ndarray, target: float) -> float:
    """The CFG scale whose (interpolated) alignment equals ``target``; NaN outside the sweep."""
    xs, ys = monotone_curve(scales, alignment)
    if not ys[0] <= target <= ys[-1]:
        return float("nan")
    return _pchip(ys, xs, target)


def interpolate(scales: np.ndarray, values: np.ndarray, at: float) -> float:
    """A sweep quantity at scale ``at`` (PCHIP between scales); NaN for a NaN scale, or where a
    sweep value has no estimate (a degenerate resample): that replicate then has no difference,
    and ``percentile_interval`` refuses an interval that too many replicates lack."""
    if not np.isfinite(at) or not np.isfinite(values).all():
        return float("nan")
    order = np.argsort(scales)
    return _pchip(scales[order], values[order], at)


def interpolation_error(scales: np.ndarray, values: np.ndarray, at: float) -> float:
    """How far off the sweep's interpolated ``values`` may be at scale ``at``.

    Leave-one-out: each interior sweep point is predicted from the others; the error of the
    prediction nearest to ``at`` is the margin. It is conservative (a point left out doubles the
    spacing), and it is not sampling noise, so the bootstrap cannot see it: a method is called
    better or worse than CFG only when its whole interval clears this margin.
    """
    order = np.argsort(scales)
    xs, ys = scales[order], values[order]
    if len(xs) < 4 or not np.isfinite(at):
        return float("nan")
    errors = []
    for k in range(1, len(xs) - 1):
        rest = np.delete(np.arange(len(xs)), k)
        errors.append((abs(xs[k] - at), abs(_pchip(xs[rest], ys[rest], xs[k]) - ys[k])))
    nearest = sorted(errors)[:2]
    return float(max(e for _, e in nearest))


class EnergyBootstrap:
    """Class-conditional energy distance of an arm, recomputable on resampled items.

    Distances to the reference and within the arm are computed once per class; a replicate only
    re-indexes them.
    """

    def __init__(self, arm: Arm, reference: ClassSets) -> None:
        self.classes: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, float]] = {}
        rows = np.asarray(arm.prompts)
        for name, ref in reference.features.items():
            idx = np.nonzero(rows == name)[0]
            if len(idx) == 0:
                continue
            f = arm.features[idx]
            to_ref = cdist(f, ref).mean(axis=1)
            self.classes[name] = (idx, to_ref, cdist(f, f), reference.within[name])

    def value(self, pick: Mapping[str, np.ndarray] | None = None) -> float:
        """Mean over classes; ``pick[class]`` are positions (within the class) to use.

        A resample repeats items; the within-set term averages over pairs of *different*
        original items only (a repeat's zero distance to itself would bias every replicate
        upwards, and the interval away from the estimate).
        """
        total = []
        for name, (idx, to_ref, within, within_ref) in self.classes.items():
            p = np.arange(len(idx)) if pick is None else pick[name]
            distinct = p[:, None] != p[None, :]
            if not distinct.any():
                return float("nan")  # a degenerate resample (one item repeated): no estimate
            w = within[np.ix_(p, p)][distinct].mean()
            total.append(2 * to_ref[p].mean() - w - within_ref)
        return float(np.mean(total))


def place(
    testbed: Testbed,
    sweep: Sequence[Arm],
    arms: Sequence[Arm],
    replicates: int = 300,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Equivalent CFG scale and energy difference at equal alignment, with bootstrap intervals,
    for each of ``arms`` (see the module docstring)."""
    scales = np.array([a.guidance for a in sweep], dtype=float)
    everything = [*sweep, *arms]
    energy = {a.key: EnergyBootstrap(a, testbed.reference) for a in everything}
    # the most aligned CFG arm, fixed from the full data (not re-chosen per resample)
    top = int(np.argmax([a.alignment for a in sweep]))
    rows = np.asarray(everything[0].prompts)
    positions = {p: np.nonzero(rows == p)[0] for p in dict.fromkeys(everything[0].prompts)}
    rng = np.random.default_rng(seed)

    def estimate(pick: Mapping[str, np.ndarray] | None) -> dict[str, tuple[float, ...]]:
        items = None if pick is None else np.concatenate([positions[p][pick[p]] for p in positions])
        align = {
            a.key: float(a.stats[ALIGNMENT][items].mean() if items is not None else a.alignment)
            for a in everything
        }
        fid = {a.key: energy[a.key].value(pick) for a in everything}
        curve_a = np.array([align[a.key] for a in sweep])
        curve_f = np.array([fid[a.key] for a in sweep])
        out: dict[str, tuple[float, ...]] = {}
        for arm in [*arms, *sweep]:
            s_star = equivalent_scale(scales, curve_a, align[arm.key])
            out[arm.key] = (
                align[arm.key],
                fid[arm.key],
                s_star,
                fid[arm.key] - interpolate(scales, curve_f, s_star),
                align[arm.key] - curve_a[top],
                fid[arm.key] - curve_f[top],
            )
        return out

    point = estimate(None)
    draws: dict[str, list[tuple[float, ...]]] = {a.key: [] for a in everything}
    for _ in range(replicates):
        pick = {p: rng.integers(0, len(ix), len(ix)) for p, ix in positions.items()}
        for key, value in estimate(pick).items():
            draws[key].append(value)
    accuracy = np.array([a.stats["accuracy"].mean() for a in sweep])
    placed = {}
    for arm in everything:
        d = np.array(draws[arm.key])
        a, f, s, delta, above, vs_top = point[arm.key]
        cfg_accuracy = interpolate(scales, accuracy, s)
        margin = interpolation_error(scales, np.array([point[a.key][1] for a in sweep]), s)
        saturation = testbed.saturation_accuracy
        placed[arm.key] = {
            "interpolation_margin": margin if np.isfinite(margin) else None,
            "saturated": saturation is not None
            and bool(
                arm.stats["accuracy"].mean() >= saturation
                or (np.isfinite(cfg_accuracy) and cfg_accuracy >= saturation)
            ),
            "alignment": {"mean": a, "ci95": percentile_interval(d[:, 0])},
            RANKING: {"value": f, "ci95": percentile_interval(d[:, 1])},
            "equivalent_scale": {
                "value": s if np.isfinite(s) else None,
                "ci95": percentile_interval(d[:, 2]),
            },
            "delta_at_equal_alignment": {
                "value": delta if np.isfinite(delta) else None,
                "ci95": percentile_interval(d[:, 3]),
            },
            # against the most aligned CFG arm: what a method beyond the sweep is compared with
            "vs_most_aligned_cfg": {
                "scale": float(scales[top]),
                "alignment_diff": {"value": above, "ci95": percentile_interval(d[:, 4])},
                RANKING + "_diff": {"value": vs_top, "ci95": percentile_interval(d[:, 5])},
            },
        }
    return placed


def percentile_interval(values: np.ndarray) -> list[float] | None:
    """The 95% percentile interval of bootstrap replicates; None when more than 5% of them are
    undefined (a method beyond the sweep's alignment in those replicates: no honest interval)."""
    finite = values[np.isfinite(values)]
    if len(finite) < CONFIDENCE * len(values):
        return None
    lo, hi = 100 * (1 - CONFIDENCE) / 2, 100 * (1 + CONFIDENCE) / 2
    return [float(np.percentile(finite, lo)), float(np.percentile(finite, hi))]
