"""Standard sampling: the trivial reflective sampler (no reflection)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

if TYPE_CHECKING:
    from zsampling.path import SamplingPath


class Standard(BaseModel):
    """Denoise through every level with one guidance scale."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: ClassVar[str] = "standard"

    guidance: float = Field(5.5, ge=0, description="Classifier-free guidance scale.")

    def sample(self, x: Tensor, path: SamplingPath) -> Tensor:
        for i in range(path.steps):
            x = path.denoise(x, i, self.guidance)
        return x
