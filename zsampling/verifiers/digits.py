"""The digits testbeds' verifier: not their judge (another architecture, other digits)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.model import ModelAdapter
from zsampling.metrics.digits import digit_labels, parts


class DigitVerifier(Component):
    """Log-probability of the requested digits, summed over parts, by a logistic regression
    trained on the digits the judge never trained on (`zsampling.digits.verifier`). For the
    embedded ``digits`` and ``digit-pairs`` models; any other model is refused by name."""

    name: ClassVar[str] = "digit-verifier"

    def score(self, model: ModelAdapter, latents: Tensor, prompts: list[str]) -> Tensor:
        from zsampling.digits.verifier import log_probabilities

        labels = torch.as_tensor(digit_labels(model, prompts, self.name, "search.verifier.use"))
        total = torch.zeros(len(prompts), dtype=torch.float64)
        rows = torch.arange(len(prompts))
        for k, part in enumerate(parts(latents, labels.shape[1])):
            total += log_probabilities(part)[rows, labels[:, k]]
        return total
