"""Guiders beyond CFG: diffusers' guiders (``diffusers.guiders``) as `GuidanceRule`\\ s, and true
CFG for guidance-distilled models.

Each diffusers-backed one wraps the diffusers guider object itself, one per bound guider (so its
state is per batch), and hands it each call's scale: zigzag's zig and zag reach it as they reach
CFG. `TrueCFG` combines two branches that both got the call's scale as an input (FLUX.1-dev).
"""

from zsampling.guiders.apg import APG
from zsampling.guiders.cfg_pp import CFGPlusPlus
from zsampling.guiders.tangential import TangentialCFG
from zsampling.guiders.true_cfg import TrueCFG
from zsampling.guiders.zero_star import CFGZeroStar

__all__ = ["APG", "CFGPlusPlus", "CFGZeroStar", "TangentialCFG", "TrueCFG"]
