"""Standard sampling: the trivial reflective sampler (no reflection)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.path import SamplingPath


class Standard(Component):
    """Denoise through every level with one guidance scale."""

    name: ClassVar[str] = "standard"
    scales: ClassVar[tuple[str, ...]] = ("guidance",)

    guidance: float = Field(5.5, ge=0, description="Classifier-free guidance scale.")

    def sample(self, x: Tensor, path: SamplingPath) -> Tensor:
        for i in range(path.steps):
            x = path.denoise(x, i, self.guidance)
        return x
