"""Adaptive projected mix guidance: CFG for the first steps, then APG; diffusers' implementation."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field
from torch import Tensor

from zsampling.core.rules import GuidanceCall
from zsampling.guiders.wrapped import DiffusersRule


class AdaptiveProjectedMixGuidance(DiffusersRule):
    """CFG at the call's scale up to level ``apg_start_step``, APG after it (at ``apg_scale``,
    or the call's scale when unset), with one momentum running average over both phases:
    diffusers' ``AdaptiveProjectedMixGuidance``.

    The momentum follows the path as `zsampling.guiders.APG`'s does: a denoise at level ``i``
    continues the average of the latest denoise at level ``i - 1``; inversions use none.
    """

    name: ClassVar[str] = "apg-mix"
    aliases: ClassVar[tuple[str, ...]] = ("adaptive-projected-mix",)
    diffusers_class: ClassVar[str] = "AdaptiveProjectedMixGuidance"

    apg_scale: float | None = Field(
        None, ge=0, description="Scale of the APG phase; default: the call's scale."
    )
    apg_start_step: int = Field(
        5, ge=0, description="APG applies at levels above this one (CFG up to it)."
    )
    eta: float = Field(0.0, description="Weight of the update's part parallel to cond.")
    norm_threshold: float = Field(
        10.0, ge=0, description="Clip the APG update to this L2 norm per item; 0 = none."
    )
    momentum: float = Field(-0.5, description="Momentum of the update's running average.")

    def diffusers_settings(self) -> dict[str, Any]:
        return {
            **super().diffusers_settings(),
            "adaptive_projected_guidance_start_step": self.apg_start_step,
            "adaptive_projected_guidance_momentum": self.momentum,
            "adaptive_projected_guidance_rescale": self.norm_threshold,
            "eta": self.eta,
        }

    def combine(self, cond: Tensor, uncond: Tensor, call: GuidanceCall) -> Tensor:
        from diffusers.guiders.adaptive_projected_guidance_mix import MomentumBuffer

        guider = self.diffusers_object(call)
        guider.adaptive_projected_guidance_scale = (
            call.scale if self.apg_scale is None else self.apg_scale
        )
        level = call.context.level
        chain: dict[int, Any] = call.state.setdefault("momentum", {})
        buffer = MomentumBuffer(self.momentum)
        if call.context.direction == "denoise" and level is not None:
            buffer.running_average = chain.get(level - 1, 0)
        guider.momentum_buffer = buffer
        pred: Tensor = guider.forward(cond, uncond).pred
        if call.context.direction == "denoise" and level is not None:
            chain[level] = buffer.running_average
        return pred
