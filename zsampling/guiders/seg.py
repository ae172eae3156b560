"""Smoothed-energy guidance (SEG, Hong 2024), diffusers' implementation."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from zsampling.core.perturbation import Perturbation, PerturbationKind
from zsampling.guiders.perturbed import PerturbedDiffusersRule


class SEG(PerturbedDiffusersRule):
    """CFG plus ``seg_scale * (cond - perturbed)``, where the perturbed branch is the conditional
    prediction with the chosen blocks' self-attention queries blurred by a Gaussian of width
    ``blur_sigma`` (which smooths the attention's energy landscape): diffusers'
    ``SmoothedEnergyGuidance`` (its hooks, its combination). The default ``blur_sigma`` is
    diffusers' "infinite" blur (every query its mean: uniform attention).
    """

    name: ClassVar[str] = "seg"
    aliases: ClassVar[tuple[str, ...]] = ("smoothed-energy",)
    diffusers_class: ClassVar[str] = "SmoothedEnergyGuidance"
    kind: ClassVar[PerturbationKind] = "smoothed-energy"
    scale_setting: ClassVar[str] = "seg_guidance_scale"
    layers_setting: ClassVar[str] = "seg_guidance_layers"

    seg_scale: float = Field(2.8, ge=0, description="Weight of cond - perturbed (diffusers').")
    blur_sigma: float = Field(
        9999999.0, gt=0, description="Width of the query blur (diffusers' seg_blur_sigma)."
    )

    def perturbation_scale(self) -> float:
        return self.seg_scale

    def perturbation(self) -> Perturbation:
        base = super().perturbation()
        return Perturbation(base.kind, base.guider, base.layers, self.blur_sigma)
