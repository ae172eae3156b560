"""Skip-layer guidance (SLG; spatiotemporal skip guidance, STG), diffusers' implementation."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from zsampling.core.perturbation import PerturbationKind
from zsampling.guiders.perturbed import PerturbedDiffusersRule


class SLG(PerturbedDiffusersRule):
    """CFG plus ``slg_scale * (cond - perturbed)``, where the perturbed branch is the conditional
    prediction with the chosen transformer blocks skipped (on a UNet: its self-attention):
    diffusers' ``SkipLayerGuidance``, which also covers STG.

    Defaults and interval are ``StableDiffusion3Pipeline``'s ``skip_guidance_layers`` (scale 2.8,
    from 1% to 20% of the steps, blocks 7-9 on SD3.5), which the parity test matches. The
    interval is that pipeline's rule, ``start * T < level < stop * T`` (strict at both ends):
    diffusers' guider rounds the ends down first, which drops a step the pipeline keeps.
    """

    name: ClassVar[str] = "slg"
    aliases: ClassVar[tuple[str, ...]] = ("skip-layer", "stg")
    diffusers_class: ClassVar[str] = "SkipLayerGuidance"
    kind: ClassVar[PerturbationKind] = "skip-layers"
    scale_setting: ClassVar[str] = "skip_layer_guidance_scale"
    layers_setting: ClassVar[str] = "skip_layer_guidance_layers"

    slg_scale: float = Field(2.8, ge=0, description="Weight of cond - perturbed (diffusers').")
    perturbed_start: float = Field(
        0.01, ge=0, lt=1, description="Fraction of steps after which skipping starts."
    )
    perturbed_stop: float = Field(
        0.2, ge=0, le=1, description="Fraction of steps after which skipping stops."
    )

    def perturbation_scale(self) -> float:
        return self.slg_scale

    def in_perturbed_interval(self, level: int, steps: int) -> bool:
        return self.perturbed_start * steps < level < self.perturbed_stop * steps
