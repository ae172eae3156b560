"""`PerturbedDiffusersRule`: the shared part of PAG, SEG and SLG (diffusers' three guiders with a
perturbed conditional branch): CFG plus ``scale * (cond - perturbed)``, computed by the diffusers
guider's ``forward``."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, model_validator
from torch import Tensor

from zsampling.core.guidance import GuidanceContext
from zsampling.core.perturbation import Perturbation, PerturbationKind, PerturbingRule
from zsampling.core.rules import GuidanceCall
from zsampling.guiders.wrapped import DiffusersRule


class PerturbedDiffusersRule(PerturbingRule, DiffusersRule):
    """CFG at the call's scale plus ``perturbed_scale * (cond - perturbed)``, where ``perturbed``
    is the conditional prediction of the model perturbed as `kind` says, on ``layers``.

    The CFG part follows the call's scale and the base interval (``start``/``stop``), so zigzag's
    zig and zag reach it as they reach CFG; the perturbed part has its own scale and interval
    (``perturbed_start``/``perturbed_stop``). At scale 1 (or outside the CFG interval) the
    unconditional branch is not evaluated and the call is ``cond + perturbed_scale * (cond -
    perturbed)``, as in diffusers' PAG pipelines without CFG (diffusers' guider has one
    ``perturbed_scale`` less there, see `_without_cfg`); outside the perturbed interval the
    perturbed branch is not evaluated.
    """

    kind: ClassVar[PerturbationKind]
    scale_setting: ClassVar[str]
    """The diffusers guider's attribute that holds the perturbed scale."""

    layers: list[int] | None = Field(
        None,
        description="Block indices to perturb; default: the model family's (docs/methods.md).",
    )
    perturbed_start: float = Field(
        0.0, ge=0, lt=1, description="Fraction of steps after which the perturbed branch starts."
    )
    perturbed_stop: float = Field(
        1.0, ge=0, le=1, description="Fraction of steps after which the perturbed branch stops."
    )

    @model_validator(mode="after")
    def _perturbed_interval(self) -> PerturbedDiffusersRule:
        if self.perturbed_stop < self.perturbed_start:
            raise ValueError(
                f"perturbed_stop ({self.perturbed_stop}) must be >= perturbed_start "
                f"({self.perturbed_start})"
            )
        return self

    def perturbation(self) -> Perturbation:
        layers = None if self.layers is None else tuple(self.layers)
        return Perturbation(self.kind, self.name, layers)

    def perturbs(self, context: GuidanceContext) -> bool:
        if not super().perturbs(context) or context.level is None or context.steps is None:
            return super().perturbs(context)
        return self.in_perturbed_interval(context.level, context.steps)

    def in_perturbed_interval(self, level: int, steps: int) -> bool:
        """diffusers' interval rule (as `GuidanceRule.active`), on the perturbed interval."""
        start, stop = int(self.perturbed_start * steps), int(self.perturbed_stop * steps)
        return start <= level < stop

    def diffusers_settings(self) -> dict[str, Any]:
        return {**super().diffusers_settings(), self.layers_setting: [0]}

    layers_setting: ClassVar[str]
    """The diffusers constructor's layer argument (required there; the hooks are ours)."""

    def combine_perturbed(
        self, cond: Tensor, uncond: Tensor | None, perturbed: Tensor | None, call: GuidanceCall
    ) -> Tensor:
        if uncond is None:
            return self._without_cfg(cond, perturbed)
        guider = self.diffusers_object(call)
        setattr(guider, self.scale_setting, 0.0 if perturbed is None else self.perturbation_scale())
        pred: Tensor = guider.forward(cond, uncond, perturbed).pred
        return pred

    def _without_cfg(self, cond: Tensor, perturbed: Tensor | None) -> Tensor:
        """``cond + w (cond - perturbed)``: the PAG pipelines' formula without CFG, and the limit
        of the guided one at scale 1 (diffusers' guider gives ``perturbed + w (cond -
        perturbed)`` there, one ``w`` less than just above scale 1)."""
        if perturbed is None:
            return cond
        from diffusers.guiders.guider_utils import rescale_noise_cfg

        pred = cond + self.perturbation_scale() * (cond - perturbed)
        if self.guidance_rescale > 0:
            pred = rescale_noise_cfg(pred, cond, self.guidance_rescale)
        return pred
