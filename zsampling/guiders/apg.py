"""Adaptive projected guidance (APG, Sadat et al. 2024), diffusers' implementation."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field
from torch import Tensor

from zsampling.core.rules import GuidanceCall
from zsampling.guiders.wrapped import DiffusersRule


class APG(DiffusersRule):
    """CFG whose update ``cond - uncond`` is clipped to norm ``norm_threshold`` and split into
    parts parallel and orthogonal to the conditional prediction, the parallel part weighted by
    ``eta``; optionally with a momentum running average: diffusers'
    ``AdaptiveProjectedGuidance``.

    **Momentum under reflection.** The running average follows the path like a multistep
    solver's history: a *denoise* at level ``i`` continues the average left by the latest
    denoise at level ``i - 1`` and records its own for level ``i``. So a zigzag's re-denoise of a
    level replaces that level's term instead of adding a second one, and a standard run is
    diffusers' sequential momentum exactly. Inversions and a sampler's own ``predict`` calls use
    no momentum and leave it as it is (an isolated zag is first order, as with DPM-Solver++).

    Scale 0 is the unconditional prediction (when ``guidance_rescale`` is 0), so a zag at scale
    0 evaluates only that branch.
    """

    name: ClassVar[str] = "apg"
    diffusers_class: ClassVar[str] = "AdaptiveProjectedGuidance"

    eta: float = Field(1.0, description="Weight of the update's part parallel to cond.")
    norm_threshold: float = Field(
        15.0,
        ge=0,
        description="Clip the update to this L2 norm per item (diffusers' "
        "adaptive_projected_guidance_rescale); 0 = no clipping.",
    )
    momentum: float | None = Field(
        None,
        description="Momentum of the update's running average (the paper uses -0.5); "
        "none = no momentum.",
    )

    def diffusers_settings(self) -> dict[str, Any]:
        return {
            **super().diffusers_settings(),
            "eta": self.eta,
            "adaptive_projected_guidance_rescale": self.norm_threshold,
            "adaptive_projected_guidance_momentum": self.momentum,
        }

    def unconditional_at_zero(self) -> bool:
        return self.guidance_rescale == 0

    def combine(self, cond: Tensor, uncond: Tensor, call: GuidanceCall) -> Tensor:
        guider = self.diffusers_object(call)
        level = call.context.level
        chain: dict[int, Any] = call.state.setdefault("momentum", {})
        buffer = None
        if self.momentum is not None and call.context.direction == "denoise" and level is not None:
            from diffusers.guiders.adaptive_projected_guidance import MomentumBuffer

            buffer = MomentumBuffer(self.momentum)
            buffer.running_average = chain.get(level - 1, 0)
        guider.momentum_buffer = buffer
        pred: Tensor = guider.forward(cond, uncond).pred
        if buffer is not None and level is not None:
            chain[level] = buffer.running_average
        return pred
