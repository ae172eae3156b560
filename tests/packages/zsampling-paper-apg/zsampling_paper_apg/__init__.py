"""Adaptive projected guidance as Sadat et al. (2024) write it, from docs/plugins.md alone.

``D = cond + (scale - 1) * (d_orth + eta * d_par)``, with ``d = cond - uncond`` (after momentum
and clipping) split into parts orthogonal and parallel to ``cond``. Not diffusers' variant
(which starts from ``uncond``): at eta 1 without clipping both are CFG.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field

from zsampling import GuidanceRule
from zsampling.plugins import hookimpl


class PaperAPG(GuidanceRule):
    """APG as in the paper: projected, clipped update with a per-level momentum."""

    name: ClassVar[str] = "paper-apg"

    eta: float = Field(0.0, description="Weight of the update's part parallel to cond.")
    threshold: float = Field(15.0, ge=0, description="Clip the update to this norm (0: off).")
    momentum: float = Field(-0.5, description="Momentum of the update (0: none).")

    def combine(self, cond, uncond, call):
        dims = list(range(1, cond.ndim))
        diff = cond - uncond
        level = call.context.level
        if self.momentum and call.context.direction == "denoise" and level is not None:
            # state per bound guider: the running average of the latest denoise of each level
            averages = call.state.setdefault("averages", {})
            diff = diff + self.momentum * averages.get(level - 1, torch.zeros_like(diff))
            averages[level] = diff
        if self.threshold > 0:
            norm = diff.norm(dim=dims, keepdim=True)
            diff = diff * torch.clamp(self.threshold / norm, max=1.0)
        unit = torch.nn.functional.normalize(cond.flatten(1), dim=1).view_as(cond)
        parallel = (diff * unit).sum(dim=dims, keepdim=True) * unit
        return cond + (call.scale - 1.0) * (diff - parallel + self.eta * parallel)


@hookimpl
def zsampling_register_guiders(register):
    register(PaperAPG)
