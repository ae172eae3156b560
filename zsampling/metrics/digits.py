"""Metrics for the embedded digits model, from the independent judge (`zsampling.digits.judge`)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.errors import InvalidArgument
from zsampling.core.model import ModelAdapter


def _digit_labels(model: ModelAdapter, prompts: list[str], metric: str) -> list[int]:
    label = getattr(model, "label", None)
    if getattr(model, "classes", None) != 10 or label is None:
        raise InvalidArgument(
            "metrics.use",
            metric,
            "a metric for this model (this one judges 8x8 digits from the digits model)",
        )
    return [int(label(p)) for p in prompts]


class DigitAlignment(Component):
    """Probability an independent classifier (trained on real digits only) gives the requested
    digit."""

    name: ClassVar[str] = "digit-alignment"

    def score(self, model: ModelAdapter, latents: Tensor, prompts: list[str]) -> Tensor:
        from zsampling.digits.judge import judge

        labels = _digit_labels(model, prompts, self.name)
        probs = judge().probabilities(latents.clamp(-1, 1))
        return torch.tensor(probs[range(len(labels)), labels])


class DigitRealism(Component):
    """Log-density of the judge's features of a sample under the held-out real digits of its
    class (higher is more realistic)."""

    name: ClassVar[str] = "digit-realism"

    def score(self, model: ModelAdapter, latents: Tensor, prompts: list[str]) -> Tensor:
        import numpy as np

        from zsampling.digits.judge import judge

        labels = np.array(_digit_labels(model, prompts, self.name))
        return torch.tensor(judge().realism(latents.clamp(-1, 1), labels))
