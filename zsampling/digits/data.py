"""The digits data set (shipped with scikit-learn), split once and for all.

- ``train`` (80%): the diffusion models train on it; the judge trains on 80% of it (``fit``) and
  calibrates its temperature on the rest (``calibration``).
- ``test`` (20%, 360 digits): nothing ever trains on it. It is cut into two stratified halves:
  ``reference``, what generated sets are compared with (set-level fidelity), and ``real``, a
  held-out real "arm" that must score better than every generated one on any fidelity metric
  used for ranking (the sanity gate), and on which the judge's accuracy is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from zsampling.core.extras import extra

CLASSES = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")
NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
NULL_CLASS = 10
"""Class index of the unconditional branch (trained with label dropout)."""


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # (N, 1, 8, 8) in [-1, 1]
    labels: torch.Tensor  # (N,) int64


def to_model_range(pixels: np.ndarray) -> torch.Tensor:
    """sklearn's 0..16 pixel values to the model's [-1, 1] images, shape (N, 1, 8, 8)."""
    x = torch.from_numpy(pixels.astype(np.float32)).reshape(-1, 1, 8, 8)
    return x / 8.0 - 1.0


@lru_cache(maxsize=1)
def splits() -> tuple[Split, Split]:
    """(train, test): a fixed stratified 80/20 split."""
    with extra("eval", "The digits data (zsampling demo, the digit metrics, training)"):
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

    digits = load_digits()
    idx = np.arange(len(digits.target))
    train, test = train_test_split(idx, test_size=0.2, random_state=0, stratify=digits.target)
    make = lambda i: Split(to_model_range(digits.data[i]), torch.from_numpy(digits.target[i]))  # noqa: E731
    return make(train), make(test)


def _stratified_halves(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    with extra("eval", "The digits data (zsampling demo, the digit metrics, training)"):
        from sklearn.model_selection import train_test_split

    idx = np.arange(len(split.labels))
    a, b = train_test_split(
        idx, test_size=fraction, random_state=seed, stratify=split.labels.numpy()
    )
    return Split(split.images[a], split.labels[a]), Split(split.images[b], split.labels[b])


@lru_cache(maxsize=1)
def judge_splits() -> tuple[Split, Split]:
    """(fit, calibration): the judge's training digits and the ones its temperature is fitted on,
    a stratified 80/20 cut of ``train``."""
    return _stratified_halves(splits()[0], 0.2, seed=1)


@lru_cache(maxsize=1)
def held_out_halves() -> tuple[Split, Split]:
    """(reference, real): the test split in two stratified halves of 180 digits (18 per class)."""
    return _stratified_halves(splits()[1], 0.5, seed=2)


def class_index(prompt: str) -> int | None:
    """'7', 'seven' or 'a 7' style prompts to a class index; None when it names no digit."""
    p = prompt.strip().lower()
    if p in CLASSES:
        return CLASSES.index(p)
    if p in NAMES:
        return NAMES.index(p)
    return None
