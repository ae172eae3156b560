"""Classifier-free guidance: the default guider, a `GuidanceRule` like any plugin's."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from zsampling.core.rules import GuidanceCall, GuidanceRule


class CFG(GuidanceRule):
    """Classifier-free guidance, ``uncond + scale * (cond - uncond)`` (diffusers' formulation).

    Combined on the model's own quantity (eps; the velocity for flow models) in float64, the
    other half derived from ``x``: in exact arithmetic the same pair as combining ``x0`` and
    ``eps`` with the same weights (the weights sum to one), but rounded once. Combining rounded
    branch ``x0``\\ s instead multiplies their rounding by the scale, and at high noise
    ``x0 = x / alpha`` is large, so that rounding would dominate the parity error against the
    pipeline (docs/plugins.md). Equal to diffusers' ``ClassifierFreeGuidance`` on the same
    predictions, interval included. Scale 0 is the unconditional branch alone, 1 the conditional
    one: only that branch is evaluated.
    """

    name: ClassVar[str] = "cfg"

    def combine(self, cond: Tensor, uncond: Tensor, call: GuidanceCall) -> Tensor:
        # uncond + scale * (cond - uncond), as one kernel (float64 here: the rounding of the two
        # forms differs by about 1e-16)
        return torch.lerp(uncond, cond, call.scale)

    def unconditional_at_zero(self) -> bool:
        return True
