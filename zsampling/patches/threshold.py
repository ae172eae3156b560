"""Dynamic thresholding (Saharia et al., Imagen 2022) as a patch that works on any model."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.model import Conditioning, ModelAdapter
from zsampling.core.prediction import Prediction


class ThresholdedModel:
    """A model whose ``x0`` predictions are dynamically thresholded; eps follows for consistency.

    Everything but ``predict`` is the wrapped model's, so patches stack.
    """

    def __init__(self, inner: ModelAdapter, percentile: float, threshold: float) -> None:
        self.inner = inner
        self.percentile = percentile
        self.threshold = threshold

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def predict(self, x: Tensor, sigma: Tensor, cond: Conditioning) -> Prediction:
        pred = self.inner.predict(x, sigma, cond)
        x0 = pred.x0.to(torch.float64)
        flat = x0.reshape(x0.shape[0], -1).abs()
        s = torch.quantile(flat, self.percentile, dim=1).clamp(min=self.threshold)
        s = s.view(-1, *([1] * (x0.ndim - 1)))
        x0 = x0.clamp(-s, s) / s * self.threshold
        alpha, noise = self.inner.process.coefficients(sigma)
        shape = (-1, *([1] * (x0.ndim - 1)))
        alpha, noise = alpha.view(shape), noise.view(shape)
        eps = torch.where(
            noise > 0,
            (x.to(torch.float64) - alpha * x0) / noise.clamp(min=1e-300),
            pred.eps.to(torch.float64),
        )
        return Prediction(x0.to(x.dtype), eps.to(x.dtype))


class DynamicThreshold(Component):
    """Clamp each predicted ``x0`` at its ``percentile`` of absolute values (never below
    ``threshold``) and rescale into ``[-threshold, threshold]``: keeps high guidance scales from
    saturating. Works on every adapter."""

    name: ClassVar[str] = "dynamic-threshold"

    percentile: float = Field(0.995, gt=0, le=1, description="Quantile of |x0| used as the bound.")
    threshold: float = Field(1.0, gt=0, description="Smallest bound; also the output range.")

    def apply(self, model: ModelAdapter) -> ModelAdapter:
        return ThresholdedModel(model, self.percentile, self.threshold)
