"""Frequency-decoupled guidance (FDG, Sadat et al. 2025), diffusers' implementation."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator
from torch import Tensor

from zsampling.core.errors import InvalidArgument, RunFailure
from zsampling.core.rules import GuidanceCall
from zsampling.guiders.wrapped import DiffusersRule


class FrequencyDecoupledGuidance(DiffusersRule):
    """CFG applied separately to the levels of a Laplacian pyramid of the two predictions, each
    level with its own scale, then recombined: diffusers' ``FrequencyDecoupledGuidance``.

    **Scales.** zsampling gives a guider one scale per call (zigzag's zig and zag differ), so the
    level scales are ``1 + weight * (scale - 1)``, one ``level_weights`` entry per level, from
    high frequencies to low: at scale 1 every level is 1 (the conditional branch alone), and the
    default weights ``(1, 4/9)`` give diffusers' default ``guidance_scales = [10, 5]`` at scale 10
    (strong guidance on detail, weak on layout, the paper's recipe).

    Needs ``kornia`` (diffusers builds the pyramid with it): ``pip install kornia``.
    """

    name: ClassVar[str] = "fdg"
    aliases: ClassVar[tuple[str, ...]] = ("frequency-decoupled",)
    diffusers_class: ClassVar[str] = "FrequencyDecoupledGuidance"

    level_weights: list[float] = Field(
        [1.0, 4 / 9],
        min_length=1,
        description="Per pyramid level (high to low frequency), the share of the call's "
        "scale above 1: level scale = 1 + weight * (scale - 1).",
    )
    parallel_weights: list[float] | None = Field(
        None,
        description="Per level, the weight of the update's part parallel to cond (APG's eta; "
        "none = 1, plain CFG per level).",
    )

    @field_validator("parallel_weights")
    @classmethod
    def _one_per_level(cls, value: list[float] | None, info: Any) -> list[float] | None:
        levels = len(info.data.get("level_weights") or [])
        if value is not None and levels and len(value) != levels:
            raise ValueError(f"needs one weight per level ({levels}), got {len(value)}")
        return value

    def diffusers_settings(self) -> dict[str, Any]:
        return {
            **super().diffusers_settings(),
            "guidance_scales": [1.0 + w * 9.0 for w in self.level_weights],
            "parallel_weights": self.parallel_weights,
        }

    def combine(self, cond: Tensor, uncond: Tensor, call: GuidanceCall) -> Tensor:
        if cond.dim() != 4:
            raise InvalidArgument(
                "guider.use",
                self.name,
                "a guider for image latents: FDG's Laplacian pyramid needs latents shaped "
                f"(batch, channels, height, width), and this model's are {tuple(cond.shape)}",
            )
        from diffusers.utils import is_kornia_available

        if not is_kornia_available():
            raise RunFailure(
                "the fdg guider needs kornia (diffusers builds its Laplacian pyramid with "
                "it): pip install kornia"
            ) from None
        guider = self.diffusers_object(call)
        guider.guidance_scales = [1.0 + w * (call.scale - 1.0) for w in self.level_weights]
        pred: Tensor = guider.forward(cond, uncond).pred
        return pred
