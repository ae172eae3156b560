"""Perturbed-attention guidance (PAG, Ahn et al. 2024), diffusers' implementation."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from zsampling.core.perturbation import PerturbationKind
from zsampling.guiders.perturbed import PerturbedDiffusersRule


class PAG(PerturbedDiffusersRule):
    """CFG plus ``pag_scale * (cond - perturbed)``, where the perturbed branch is the conditional
    prediction with the chosen blocks' self-attention replaced by the identity map on its values:
    diffusers' ``PerturbedAttentionGuidance`` (its hooks, its combination).

    Defaults are those of diffusers' ``StableDiffusionPAGPipeline`` (``pag_scale = 3``, the mid
    block, every step), which the parity tests match; one extra conditional row per step.
    """

    name: ClassVar[str] = "pag"
    aliases: ClassVar[tuple[str, ...]] = ("perturbed-attention",)
    diffusers_class: ClassVar[str] = "PerturbedAttentionGuidance"
    kind: ClassVar[PerturbationKind] = "attention-scores"
    scale_setting: ClassVar[str] = "skip_layer_guidance_scale"
    layers_setting: ClassVar[str] = "perturbed_guidance_layers"

    pag_scale: float = Field(
        3.0, ge=0, description="Weight of cond - perturbed (the pipelines' pag_scale)."
    )

    def perturbation_scale(self) -> float:
        return self.pag_scale
