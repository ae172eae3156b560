"""The digits data set (shipped with scikit-learn), split once and for all.

The diffusion model trains on ``train``; the judge trains on ``train`` too and is scored on
``test``, which nothing else ever trains on; fidelity compares generated digits with ``test``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

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
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    idx = np.arange(len(digits.target))
    train, test = train_test_split(idx, test_size=0.2, random_state=0, stratify=digits.target)
    make = lambda i: Split(to_model_range(digits.data[i]), torch.from_numpy(digits.target[i]))  # noqa: E731
    return make(train), make(test)


def class_index(prompt: str) -> int | None:
    """'7', 'seven' or 'a 7' style prompts to a class index; None when it names no digit."""
    p = prompt.strip().lower()
    if p in CLASSES:
        return CLASSES.index(p)
    if p in NAMES:
        return NAMES.index(p)
    return None
