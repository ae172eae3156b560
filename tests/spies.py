"""A model that records what samplers and guiders ask of it (shared by the guider tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from zsampling.core.model import Conditioning, ModelAdapter
from zsampling.core.prediction import Prediction


@dataclass(frozen=True)
class Call:
    """One ``predict`` call: how many rows, at which level, and what the model answered."""

    rows: int
    sigma: float
    prediction: Prediction


class ModelSpy:
    """Wraps a model (everything passes through) and records every ``predict`` call."""

    def __init__(self, model: ModelAdapter) -> None:
        self.model = model
        self.calls: list[Call] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    @property
    def rows(self) -> list[int]:
        return [c.rows for c in self.calls]

    def predict(self, x: Tensor, sigma: Tensor, cond: Conditioning) -> Prediction:
        prediction = self.model.predict(x, sigma, cond)
        self.calls.append(Call(int(x.shape[0]), float(sigma[0]), prediction))
        return prediction
