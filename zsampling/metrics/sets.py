"""Set-level fidelity: how a generated set sits against held-out real data of the same prompt.

Per-sample scores (a log-density, a realism score) reward the prototypical sample, so a
generator that collapses onto its class mean looks "more realistic" than real data. Set-level
measures compare distributions instead, in a feature space (for the digits testbeds, the
independent judge's features):

- ``energy``: the energy distance per prompt class, unbiased (U-statistics), averaged over the
  classes. Zero in expectation for a set drawn like the reference, whatever the set sizes, which is
  why it can rank with ~20 items per class. Lower is better.
- ``frechet``: the Frechet distance of the pooled, class-balanced sets. Biased at small sizes.
- ``precision``, ``recall``, ``density``, ``coverage``: the k-nearest-neighbour manifold measures
  of Kynkaenniemi et al. (2019) and Naeem et al. (2020), as the ``prdc`` package computes them,
  on the pooled sets. Higher is better.
- ``diversity``: mean pairwise feature distance within each class, averaged; a descriptor (how
  spread out the samples are), not a score: neither more nor less is better in itself.

Which of these may rank methods is not assumed: `zsampling.evaluation.frontier` lets a metric rank
only if held-out real data scores better on it than every arm of a CFG sweep (the sanity gate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from zsampling.core.extras import extra

with extra("eval", "The set metrics (energy distance, Frechet distance, PRDC)"):
    from scipy import linalg
    from scipy.spatial.distance import cdist

LOWER_IS_BETTER = {"energy": True, "frechet": True}
"""Direction of each ranked metric; the others (precision, recall, density, coverage) are
higher-is-better. ``diversity`` is a descriptor and has no direction."""

RANKABLE = ("energy", "frechet", "precision", "recall", "density", "coverage")


def better(metric: str, a: float, b: float) -> bool:
    """Whether value ``a`` of ``metric`` is strictly better than ``b``."""
    return a < b if LOWER_IS_BETTER.get(metric, False) else a > b


def _mean_offdiagonal(d: np.ndarray) -> float:
    n = d.shape[0]
    return float((d.sum() - np.trace(d)) / (n * (n - 1)))


def energy_distance(
    x: np.ndarray, y: np.ndarray, within_y: float | None = None, within_x: float | None = None
) -> float:
    """Unbiased squared energy distance ``2 E|X-Y| - E|X-X'| - E|Y-Y'|`` (needs >= 2 rows each);
    ``within_y``/``within_x`` are ``E|Y-Y'|``/``E|X-X'|`` when the caller has them (a fixed
    reference; a resampled set whose repeats must not count as pairs, see `ClassSets`)."""
    if within_y is None:
        within_y = _mean_offdiagonal(cdist(y, y))
    if within_x is None:
        within_x = _mean_offdiagonal(cdist(x, x))
    return 2.0 * float(cdist(x, y).mean()) - within_x - within_y


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to ``x`` and ``y`` (a small ridge keeps dead
    ReLU features from making the covariances singular)."""
    ridge = 1e-6 * np.eye(x.shape[1])
    cx, cy = np.cov(x, rowvar=False) + ridge, np.cov(y, rowvar=False) + ridge
    root = linalg.sqrtm(cx @ cy)
    root = root.real if np.iscomplexobj(root) else root
    diff = x.mean(0) - y.mean(0)
    return float(diff @ diff + np.trace(cx + cy - 2.0 * root))


def manifold_scores(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage with ``k`` nearest neighbours.

    The definitions (and results: tests/test_set_metrics.py compares them) are those of the
    ``prdc`` package (Naeem et al., 2020); written here on scipy's ``cdist`` because ``prdc``
    prints, and farms every distance matrix out to 8 joblib workers, which made the bootstrap
    (thousands of small calls) 30 times slower.
    """
    d_rf = cdist(real, fake)
    real_radii = _kth_neighbour(cdist(real, real), k)
    fake_radii = _kth_neighbour(cdist(fake, fake), k)
    inside_real = d_rf < real_radii[:, None]
    return {
        "precision": float(inside_real.any(axis=0).mean()),
        "recall": float((d_rf < fake_radii[None, :]).any(axis=1).mean()),
        "density": float(inside_real.sum(axis=0).mean() / k),
        "coverage": float((d_rf.min(axis=1) < real_radii).mean()),
    }


def _kth_neighbour(d: np.ndarray, k: int) -> np.ndarray:
    """Distance of each row to its ``k``-th nearest neighbour (itself, at 0, not counted)."""
    return np.partition(d, k, axis=1)[:, k]


def diversity(x: np.ndarray) -> float:
    """Mean pairwise distance within a set."""
    return _mean_offdiagonal(cdist(x, x))


@dataclass(frozen=True)
class ClassSets:
    """Features of one set, grouped by prompt class (every class with at least 2 items).

    ``sources`` (optional, per class, one row of ids per item) says what an item is made of: a
    real digit pair is made of two real digits, and many pairs of a reference share one. Two
    items sharing a source are not independent draws, so the within-set mean distance is taken
    over pairs that share none (otherwise it is too small and every energy distance too large).
    """

    features: dict[str, np.ndarray]
    sources: dict[str, np.ndarray] | None = None

    @classmethod
    def group(
        cls, features: np.ndarray, prompts: Sequence[str], sources: np.ndarray | None = None
    ) -> ClassSets:
        keys = list(dict.fromkeys(prompts))
        rows = np.asarray(prompts)
        grouped = None if sources is None else {k: sources[rows == k] for k in keys}
        return cls({k: features[rows == k] for k in keys}, grouped)

    @cached_property
    def within(self) -> dict[str, float]:
        """Mean distance between independent items of each class (computed once: references are
        reused by every arm)."""
        out = {}
        for k, f in self.features.items():
            d = cdist(f, f)
            if self.sources is None:
                out[k] = _mean_offdiagonal(d)
                continue
            src = self.sources[k]
            shares = (src[:, None, :] == src[None, :, :]).any(axis=2)  # includes the diagonal
            # a resample of one original item repeated has no independent pair: undefined
            out[k] = float(d[~shares].mean()) if not shares.all() else float("nan")
        return out

    def pooled(self, per_class: int | None = None) -> np.ndarray:
        """All classes stacked, each cut to its first ``per_class`` rows (class balance)."""
        return np.concatenate([f[:per_class] for f in self.features.values()])


def set_scores(
    generated: ClassSets, reference: ClassSets, per_class: int, k: int = 5
) -> dict[str, float]:
    """Every set-level measure of ``generated`` against ``reference`` (same classes).

    The pooled measures (Frechet, precision/recall/density/coverage) depend on set sizes, so they
    use the first ``per_class`` items of every class on both sides: compare arms (the held-out
    real one included) only at the same ``per_class``.
    """
    classes = list(generated.features)
    missing = [c for c in classes if c not in reference.features]
    if missing:
        raise ValueError(f"no reference data for {missing}")
    energy = np.mean(
        [
            energy_distance(
                generated.features[c], reference.features[c], reference.within[c],
                generated.within[c] if generated.sources is not None else None,
            )
            for c in classes
        ]
    )
    n = per_class
    fake = generated.pooled(n)
    real = ClassSets({c: reference.features[c] for c in classes}).pooled(n)
    scores = {
        "energy": float(energy),
        "frechet": frechet_distance(fake, real),
        **manifold_scores(real, fake, k),
        "diversity": float(np.mean([diversity(generated.features[c]) for c in classes])),
    }
    return scores
