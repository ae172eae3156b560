"""Guiders beyond CFG: diffusers' guiders (``diffusers.guiders``) as `GuidanceRule`\\ s, and true
CFG for guidance-distilled models.

Each diffusers-backed one wraps the diffusers guider object itself, one per bound guider (so its
state is per batch), and hands it each call's scale: zigzag's zig and zag reach it as they reach
CFG. `TrueCFG` combines two branches that both got the call's scale as an input (FLUX.1-dev).
`PAG`, `SEG` and `SLG` add a perturbed conditional branch (`zsampling.core.perturbation`), and
`AutoGuidance` a weak model's conditional branch instead of the unconditional one.
"""

from zsampling.guiders.apg import APG
from zsampling.guiders.apg_mix import AdaptiveProjectedMixGuidance
from zsampling.guiders.auto import AutoGuidance
from zsampling.guiders.cfg_pp import CFGPlusPlus
from zsampling.guiders.fdg import FrequencyDecoupledGuidance
from zsampling.guiders.magnitude import MagnitudeAwareGuidance
from zsampling.guiders.pag import PAG
from zsampling.guiders.rescaled_cfg import RescaledCFG
from zsampling.guiders.seg import SEG
from zsampling.guiders.slg import SLG
from zsampling.guiders.tangential import TangentialCFG
from zsampling.guiders.true_cfg import TrueCFG
from zsampling.guiders.zero_star import CFGZeroStar

__all__ = [
    "APG",
    "PAG",
    "SEG",
    "SLG",
    "AdaptiveProjectedMixGuidance",
    "AutoGuidance",
    "CFGPlusPlus",
    "CFGZeroStar",
    "FrequencyDecoupledGuidance",
    "MagnitudeAwareGuidance",
    "RescaledCFG",
    "TangentialCFG",
    "TrueCFG",
]
