"""Metrics on the analytic model, where the truth is known: exact posterior and log-density."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from zsampling.adapters.analytic import AnalyticModel
from zsampling.core.component import Component
from zsampling.core.errors import InvalidArgument
from zsampling.core.model import ModelAdapter


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


class ClassPosterior(Component):
    """True posterior probability of the requested class (alignment; analytic model only)."""

    name: ClassVar[str] = "class-posterior"

    def score(self, model: ModelAdapter, latents: Tensor, prompts: list[str]) -> Tensor:
        analytic = _analytic(model, self.name)
        labels = torch.tensor([analytic.label(p) for p in prompts])
        post = analytic.mixture.class_posterior(latents.reshape(latents.shape[0], -1))
        return post[torch.arange(len(prompts)), labels]


class LogDensity(Component):
    """True log-density of the sample under the data distribution (fidelity; analytic only)."""

    name: ClassVar[str] = "log-density"

    def score(self, model: ModelAdapter, latents: Tensor, prompts: list[str]) -> Tensor:
        analytic = _analytic(model, self.name)
        return analytic.mixture.log_density(latents.reshape(latents.shape[0], -1))
