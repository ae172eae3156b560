"""`DiffusersRule`: a `GuidanceRule` whose combine is a diffusers guider's ``forward``."""

from __future__ import annotations

import logging
import sys
from typing import Any, ClassVar

from pydantic import Field
from torch import Tensor

from zsampling.core.errors import RunFailure
from zsampling.core.prediction import Space
from zsampling.core.rules import GuidanceCall, GuidanceRule


def diffusers_guider(class_name: str, **settings: Any) -> Any:
    """A new ``diffusers.guiders.<class_name>(**settings)``, without its "experimental" warning."""
    try:
        import diffusers
        import diffusers.guiders as guiders
    except ImportError as err:  # pragma: no cover - diffusers is a dependency
        raise RunFailure(f"the {class_name} guider needs diffusers.guiders ({err})") from None
    cls = getattr(guiders, class_name, None)
    if cls is None:
        raise RunFailure(
            f"diffusers {diffusers.__version__} has no diffusers.guiders.{class_name}; this "
            "guider needs a diffusers release that ships it (0.35 or later)"
        )
    logger = logging.getLogger("diffusers.guiders.guider_utils")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return cls(**settings)
    finally:
        logger.setLevel(level)


class DiffusersRule(GuidanceRule):
    """A rule computed by a diffusers guider: one guider object per bound guider (per batch),
    given each call's scale and step before its ``forward(pred_cond, pred_uncond)``.

    The guidance interval is the base's (`GuidanceRule.active`, diffusers' own rule), so the
    diffusers object is built with ``start=0, stop=1``; its ``step`` is the level the model is
    evaluated at.
    """

    diffusers_class: ClassVar[str]

    space: Space | None = Field(
        None,
        description="What the rule combines: eps, x0 or velocity; default: the model's own "
        "(velocity for flow models, eps otherwise), as a diffusers pipeline does.",
    )
    guidance_rescale: float = Field(
        0.0,
        ge=0,
        le=1,
        description="diffusers' guidance_rescale (Lin et al. 2023): 0 = off.",
    )

    def diffusers_settings(self) -> dict[str, Any]:
        """The diffusers guider's constructor arguments besides the scale and the interval."""
        return {"guidance_rescale": self.guidance_rescale}

    def diffusers_object(self, call: GuidanceCall) -> Any:
        """This batch's diffusers guider, set to this call's scale and step."""
        guider = call.state.get("diffusers")
        if guider is None:
            guider = diffusers_guider(
                self.diffusers_class, start=0.0, stop=1.0, **self.diffusers_settings()
            )
            call.state["diffusers"] = guider
        guider.guidance_scale = call.scale
        level = call.context.level
        guider.set_state(sys.maxsize if level is None else level, None, None)
        return guider

    def combine(self, cond: Tensor, uncond: Tensor, call: GuidanceCall) -> Tensor:
        pred: Tensor = self.diffusers_object(call).forward(cond, uncond).pred
        return pred
