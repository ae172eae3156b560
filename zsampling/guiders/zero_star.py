"""CFG-Zero* (Fan et al. 2025), diffusers' implementation."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field

from zsampling.core.prediction import Prediction
from zsampling.core.rules import GuidanceCall
from zsampling.guiders.wrapped import DiffusersRule


class CFGZeroStar(DiffusersRule):
    """CFG with the unconditional prediction rescaled by the optimal scale
    ``<cond, uncond> / |uncond|^2`` per item, and optionally zero predictions on the first
    ``zero_init_steps`` levels: diffusers' ``ClassifierFreeZeroStarGuidance``.

    Zero-init applies to every call evaluated at a level below ``zero_init_steps``, at any scale
    and in either direction (as diffusers applies it at any scale); a zero velocity leaves a flow
    latent where it is. Scale 0 is the rescaled unconditional prediction, so a zag at scale 0
    evaluates both branches.
    """

    name: ClassVar[str] = "cfg-zero-star"
    diffusers_class: ClassVar[str] = "ClassifierFreeZeroStarGuidance"

    zero_init_steps: int = Field(
        0,
        ge=0,
        description="Levels from the start whose prediction is zero (the paper's zero-init, "
        "for flow models; diffusers defaults to 1).",
    )

    def diffusers_settings(self) -> dict[str, Any]:
        return {**super().diffusers_settings(), "zero_init_steps": self.zero_init_steps}

    def conditional_only(self, cond: Prediction, call: GuidanceCall) -> Prediction:
        level = call.context.level
        if level is None or level >= self.zero_init_steps:
            return cond
        zero = Prediction(torch.zeros_like(cond.x0), torch.zeros_like(cond.eps))
        space = self.resolved_space(call)
        return Prediction.from_part(
            space, zero.part(space), call.x, call.alpha, call.s, fallback=zero
        )
