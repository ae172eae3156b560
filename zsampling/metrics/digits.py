"""Per-item metrics for the embedded digits models, from the independent judge
(`zsampling.digits.judge`). A prompt of several digits (``"3 7"``) is judged part by part: each
8x8 part against its own digit.

These are per-sample scores. Alignment is what they are good for. ``digit-typicality`` is not a
fidelity measure: it rewards the prototypical sample, and held-out real digits score worse on it
than many generated sets; set-level fidelity is `zsampling.metrics.sets` (``zsampling eval``).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.errors import InvalidArgument
from zsampling.core.model import ModelAdapter


def digit_labels(
    model: ModelAdapter, prompts: list[str], metric: str, field: str = "metrics.use"
) -> np.ndarray:
    """The digits each prompt asks for, shape (N, parts), or a clear error for other models
    (naming ``field``, the setting that chose the component)."""
    labels = getattr(model, "labels", None)
    role = "metric" if field.startswith("metrics") else "verifier"
    if getattr(model, "classes", None) != 10 or labels is None:
        raise InvalidArgument(
            field,
            metric,
            f"a {role} for this model (this one judges digits from the digits or digit-pairs "
            "model)",
        )
    return np.array([labels(p) for p in prompts])


def parts(latents: Tensor, count: int) -> list[Tensor]:
    """The 8x8 digits of a canvas, left to right, in [-1, 1]."""
    x = latents.clamp(-1, 1)
    return [x[..., 8 * k : 8 * (k + 1)] for k in range(count)]


class DigitAlignment(Component):
    """Probability the independent, calibrated judge (trained on real digits only) gives the
    requested digits (every part)."""

    name: ClassVar[str] = "digit-alignment"

    def score(self, model: ModelAdapter, latents: Tensor, prompts: list[str]) -> Tensor:
        from zsampling.digits.judge import judge

        labels = digit_labels(model, prompts, self.name)
        p = np.ones(len(prompts))
        for k, part in enumerate(parts(latents, labels.shape[1])):
            p *= judge().probabilities(part)[np.arange(len(prompts)), labels[:, k]]
        return torch.tensor(p)


class DigitAccuracy(Component):
    """1 when the judge's top class is the requested digit in every part, else 0."""

    name: ClassVar[str] = "digit-accuracy"

    def score(self, model: ModelAdapter, latents: Tensor, prompts: list[str]) -> Tensor:
        from zsampling.digits.judge import judge

        labels = digit_labels(model, prompts, self.name)
        right = np.ones(len(prompts), dtype=bool)
        for k, part in enumerate(parts(latents, labels.shape[1])):
            right &= judge().probabilities(part).argmax(1) == labels[:, k]
        return torch.tensor(right.astype(float))


class DigitTypicality(Component):
    """How prototypical each part looks: the log-density of its judge features under a Gaussian
    of reference digits of its class, summed over parts. Typicality, not fidelity: it prefers
    collapsed samples to real ones."""

    name: ClassVar[str] = "digit-typicality"
    aliases: ClassVar[tuple[str, ...]] = ("digit-realism",)

    def score(self, model: ModelAdapter, latents: Tensor, prompts: list[str]) -> Tensor:
        from zsampling.digits.judge import judge

        labels = digit_labels(model, prompts, self.name)
        total = np.zeros(len(prompts))
        for k, part in enumerate(parts(latents, labels.shape[1])):
            total += judge().typicality(part, labels[:, k])
        return torch.tensor(total)
