"""Metrics on the analytic model, where the truth is known (more metrics come as plugins)."""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor

from zsampling.adapters.analytic import AnalyticModel
from zsampling.adapters.base import ModelAdapter
from zsampling.errors import InvalidArgument


def _analytic(model: ModelAdapter, metric: str) -> AnalyticModel:
    mixture = getattr(model, "mixture", None)
    if mixture is None:
        raise InvalidArgument(
            "metrics.use",
            metric,
            "a metric for this model (this one needs "
            "the analytic model, whose true density is known)",
        )
    return model  # type: ignore[return-value]


class ClassPosterior(BaseModel):
    """True posterior probability of the requested class (alignment; analytic model only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: ClassVar[str] = "class-posterior"

    def score(self, model: ModelAdapter, latents: Tensor, prompts: list[str]) -> Tensor:
        analytic = _analytic(model, self.name)
        labels = torch.tensor([analytic.label(p) for p in prompts])
        post = analytic.mixture.class_posterior(latents.reshape(latents.shape[0], -1))
        return post[torch.arange(len(prompts)), labels]


class LogDensity(BaseModel):
    """True log-density of the sample under the data distribution (fidelity; analytic only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: ClassVar[str] = "log-density"

    def score(self, model: ModelAdapter, latents: Tensor, prompts: list[str]) -> Tensor:
        analytic = _analytic(model, self.name)
        return analytic.mixture.log_density(latents.reshape(latents.shape[0], -1))


def _digit_labels(model: ModelAdapter, prompts: list[str], metric: str) -> list[int]:
    label = getattr(model, "label", None)
    if getattr(model, "classes", None) != 10 or label is None:
        raise InvalidArgument(
            "metrics.use",
            metric,
            "a metric for this model (this one judges 8x8 digits from the digits model)",
        )
    return [int(label(p)) for p in prompts]


class DigitAlignment(BaseModel):
    """Probability an independent classifier (trained on real digits only) gives the requested
    digit."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: ClassVar[str] = "digit-alignment"

    def score(self, model: ModelAdapter, latents: Tensor, prompts: list[str]) -> Tensor:
        from zsampling.digits.judge import judge

        labels = _digit_labels(model, prompts, self.name)
        probs = judge().probabilities(latents.clamp(-1, 1))
        return torch.tensor(probs[range(len(labels)), labels])


class DigitRealism(BaseModel):
    """Log-density of the judge's features of a sample under the held-out real digits of its
    class (higher is more realistic)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: ClassVar[str] = "digit-realism"

    def score(self, model: ModelAdapter, latents: Tensor, prompts: list[str]) -> Tensor:
        import numpy as np

        from zsampling.digits.judge import judge

        labels = np.array(_digit_labels(model, prompts, self.name))
        return torch.tensor(judge().realism(latents.clamp(-1, 1), labels))
