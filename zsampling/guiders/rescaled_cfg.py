"""CFG with guidance rescale (Lin et al. 2023), diffusers' implementation."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from zsampling.guiders.wrapped import DiffusersRule


class RescaledCFG(DiffusersRule):
    """CFG whose result is rescaled to the conditional prediction's standard deviation per item
    and mixed back with weight ``guidance_rescale``: diffusers' ``ClassifierFreeGuidance`` with
    ``guidance_rescale`` (the pipelines' argument of that name; section 3.4 of "Common Diffusion
    Noise Schedules and Sample Steps are Flawed"). It counters the over-exposure of high scales,
    above all on zero-terminal-SNR and v-prediction models.

    Every diffusers-backed guider (``apg``, ``pag``, ...) has the same ``guidance_rescale``
    setting, default 0; this guider is plain CFG with it on, at the paper's 0.7. Scale 1 is the
    conditional branch alone; scale 0 is the rescaled unconditional prediction, so a zag at
    scale 0 evaluates both branches.
    """

    name: ClassVar[str] = "rescaled-cfg"
    aliases: ClassVar[tuple[str, ...]] = ("cfg-rescale", "guidance-rescale")
    diffusers_class: ClassVar[str] = "ClassifierFreeGuidance"

    guidance_rescale: float = Field(
        0.7, ge=0, le=1, description="Weight of the rescaled result (the paper's phi; 0 = CFG)."
    )
