"""Tangential classifier-free guidance (TCFG, Kwon et al. 2025), diffusers' implementation."""

from __future__ import annotations

from typing import ClassVar

from zsampling.guiders.wrapped import DiffusersRule


class TangentialCFG(DiffusersRule):
    """CFG after projecting the unconditional prediction onto the first singular direction of
    the (conditional, unconditional) pair, per item: diffusers'
    ``TangentialClassifierFreeGuidance``.

    Scale 1 is the conditional branch alone; scale 0 is the *projected* unconditional
    prediction, so a zag at scale 0 evaluates both branches.
    """

    name: ClassVar[str] = "tangential-cfg"
    aliases: ClassVar[tuple[str, ...]] = ("tcfg",)
    diffusers_class: ClassVar[str] = "TangentialClassifierFreeGuidance"
