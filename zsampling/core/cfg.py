"""Classifier-free guidance: the default guider, a `GuidanceRule` like any plugin's."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from zsampling.core.prediction import Prediction
from zsampling.core.rules import GuidanceCall, GuidanceRule


class CFG(GuidanceRule):
    """Classifier-free guidance, ``uncond + scale * (cond - uncond)`` (diffusers' formulation).

    Both halves of the prediction are combined with the same weights, so the guided pair stays
    consistent at every level with no choice of space; equal to diffusers'
    ``ClassifierFreeGuidance`` on the same predictions, interval included. Scale 0 is the
    unconditional branch alone, 1 the conditional one: only that branch is evaluated.
    """

    name: ClassVar[str] = "cfg"

    def combine(self, cond: Tensor, uncond: Tensor, call: GuidanceCall) -> Tensor:
        return uncond + call.scale * (cond - uncond)

    def combine_predictions(
        self, cond: Prediction, uncond: Prediction, call: GuidanceCall
    ) -> Prediction:
        return uncond.guided(cond, call.scale)

    def unconditional_at_zero(self) -> bool:
        return True
