"""The judge over a batch: per-item statistics by GenEval category, and fidelity features.

Statistics (`judged`), one value per item:

- ``accuracy``: the image shows exactly what the prompt says (the judge's ``exact`` check);
- ``logp``: the log of the Laplace-smoothed share of the prompt's checks passed
  (`zsampling.shapes.judge.Verdict.share`). It is not a probability: the judge is exact, so it has
  none to give. It is the alignment statistic that still moves where ``accuracy`` does not (an
  image with the right shapes in the wrong colours is closer than one with nothing right);
- one column per category (`zsampling.shapes.judge.CATEGORIES`): 1 or 0 where the prompt has that
  check, NaN where it has none (means over a set skip them).

Features (`features`) are the judge's opposite on purpose: judge-independent, the image itself
average-pooled to 8x8x3, so set-level fidelity does not reward what the judge happens to read.
"""

from __future__ import annotations

import numpy as np

from zsampling.shapes.data import training_set
from zsampling.shapes.judge import CATEGORIES, judge

POOL = 4


def judged(images: np.ndarray, prompts: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Judge uint8 (N, 32, 32, 3) images against their prompts: (stats, features)."""
    verdicts = [judge(img, p) for img, p in zip(images, prompts, strict=True)]
    stats = {
        "logp": np.log([v.share for v in verdicts]),
        "accuracy": np.array([float(v.right) for v in verdicts]),
    }
    for c in CATEGORIES:
        stats[c] = np.array([float(v.checks[c]) if c in v.checks else np.nan for v in verdicts])
    return stats, features(images)


def features(images: np.ndarray) -> np.ndarray:
    """(N, 192): each image average-pooled over 4x4 blocks, RGB in [0, 1]."""
    n, h, w, c = images.shape
    x = images.astype(np.float64).reshape(n, h // POOL, POOL, w // POOL, POOL, c) / 255.0
    return x.mean(axis=(2, 4)).reshape(n, -1)


def judge_accuracy(n: int = 1200, seed: int = 99) -> dict[str, object]:
    """The judge on ``n`` held-out renders of the training distribution (a seed nothing trains
    on): the share read exactly right and every miss, with what the judge saw."""
    images, prompts = training_set(n, seed=seed)
    misses = []
    for img, p in zip(images, prompts, strict=True):
        v = judge(img, p)
        if not v.right:
            misses.append({"prompt": p, "seen": [f"{s.colour} {s.shape}" for s in v.seen]})
    return {"renders": n, "seed": seed, "accuracy": 1 - len(misses) / n, "misses": misses}
