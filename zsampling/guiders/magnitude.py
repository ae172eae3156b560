"""Magnitude-aware guidance, diffusers' implementation."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field
from torch import Tensor

from zsampling.core.rules import GuidanceCall
from zsampling.guiders.wrapped import DiffusersRule


class MagnitudeAwareGuidance(DiffusersRule):
    """CFG whose update ``cond - uncond`` is damped where it is large relative to the
    conditional prediction, with sharpness ``alpha``: diffusers' ``MagnitudeAwareGuidance``.
    It keeps high scales from overshooting. Scale 1 is the conditional branch alone.
    """

    name: ClassVar[str] = "magnitude-aware"
    aliases: ClassVar[tuple[str, ...]] = ("mag",)
    diffusers_class: ClassVar[str] = "MagnitudeAwareGuidance"

    alpha: float = Field(8.0, gt=0, description="Sharpness of the damping (diffusers' alpha).")

    def diffusers_settings(self) -> dict[str, Any]:
        return {**super().diffusers_settings(), "alpha": self.alpha}

    def combine(self, cond: Tensor, uncond: Tensor, call: GuidanceCall) -> Tensor:
        # diffusers takes the norms over every non-batch dimension with torch.norm, which
        # refuses more than two of them: flattened, each item's norm is the same number
        rows = cond.shape[0]
        guider = self.diffusers_object(call)
        pred: Tensor = guider.forward(cond.reshape(rows, -1), uncond.reshape(rows, -1)).pred
        return pred.reshape(cond.shape)
