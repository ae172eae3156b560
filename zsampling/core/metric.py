"""The `Metric` protocol: a score per generated item."""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

from torch import Tensor

from zsampling.core.model import ModelAdapter


@runtime_checkable
class Metric(Protocol):
    """``[[metrics]]``: ``score(model, latents, prompts)`` gives one float per item (higher is
    better), computed from the final latents of the model that made them."""

    name: ClassVar[str]

    def score(self, model: ModelAdapter, latents: Tensor, prompts: list[str]) -> Tensor: ...
