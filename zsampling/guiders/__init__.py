"""Guiders beyond CFG, built on diffusers' guiders (``diffusers.guiders``), as `GuidanceRule`\\ s.

Each one wraps the diffusers guider object itself, one per bound guider (so its state is per
batch), and hands it each call's scale: zigzag's zig and zag reach it as they reach CFG.
"""

from zsampling.guiders.apg import APG
from zsampling.guiders.tangential import TangentialCFG
from zsampling.guiders.zero_star import CFGZeroStar

__all__ = ["APG", "CFGZeroStar", "TangentialCFG"]
