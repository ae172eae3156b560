"""Classifier-free guidance with the scale chosen per call, and the count of what it cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.errors import InvalidArgument
from zsampling.core.model import Conditioning, ModelAdapter
from zsampling.core.prediction import Prediction


@dataclass
class EvaluationCounter:
    """Model cost, counted where it is spent (tests and benchmarks assert on it)."""

    guided_calls: int = 0
    model_calls: int = 0
    rows: int = 0
    cond_rows: int = 0
    uncond_rows: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Guider:
    """A model bound to one run's conditioning; ``guider(x, sigma, scale)`` is a guided prediction.

    Scale 0 needs only the unconditional branch and scale 1 only the conditional one, so only that
    branch is evaluated (unless ``skip_unused_branches`` is off, which reproduces the released
    Z-Sampling code's cost). Any other scale evaluates both branches in one batched call.
    """

    model: ModelAdapter
    cond: Conditioning
    uncond: Conditioning | None
    skip_unused_branches: bool = True
    counter: EvaluationCounter = field(default_factory=EvaluationCounter)

    def __call__(self, x: Tensor, sigma: float, scale: float) -> Prediction:
        self.counter.guided_calls += 1
        batch = x.shape[0]
        if self.uncond is None:
            if scale != 1.0:
                raise InvalidArgument(
                    "guidance", scale, "a scale other than 1 needs an unconditional branch"
                )
            return self._evaluate(x, sigma, self.cond, cond_rows=batch)
        if self.skip_unused_branches and scale == 1.0:
            return self._evaluate(x, sigma, self.cond, cond_rows=batch)
        if self.skip_unused_branches and scale == 0.0:
            return self._evaluate(x, sigma, self.uncond, uncond_rows=batch)
        both = {k: torch.cat([self.uncond[k], self.cond[k]]) for k in self.cond}
        uncond, cond = self._evaluate(
            torch.cat([x, x]), sigma, both, cond_rows=batch, uncond_rows=batch
        ).chunk(2)
        return uncond.guided(cond, scale)

    def _evaluate(
        self, x: Tensor, sigma: float, cond: Conditioning, cond_rows: int = 0, uncond_rows: int = 0
    ) -> Prediction:
        self.counter.model_calls += 1
        self.counter.rows += x.shape[0]
        self.counter.cond_rows += cond_rows
        self.counter.uncond_rows += uncond_rows
        levels = torch.full((x.shape[0],), float(sigma), dtype=torch.float64)
        return self.model.predict(x, levels, cond)


@runtime_checkable
class GuiderComponent(Protocol):
    """``[guider]``: settings whose ``bind`` makes the run's `Guider` for one model's branches."""

    name: ClassVar[str]

    def bind(
        self,
        model: ModelAdapter,
        cond: Conditioning,
        uncond: Conditioning | None,
        counter: EvaluationCounter | None = None,
    ) -> Guider: ...


class CFG(Component):
    """Classifier-free guidance settings (the guider component registered as ``cfg``)."""

    name: ClassVar[str] = "cfg"

    skip_unused_branches: bool = True
    """Evaluate only the branch a scale of 0 or 1 uses (same result, fewer model rows)."""

    def bind(
        self,
        model: ModelAdapter,
        cond: Conditioning,
        uncond: Conditioning | None,
        counter: EvaluationCounter | None = None,
    ) -> Guider:
        return Guider(
            model, cond, uncond, self.skip_unused_branches, counter or EvaluationCounter()
        )
