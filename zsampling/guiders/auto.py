"""AutoGuidance (Karras et al. 2024): guide a model with a weaker version of itself."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import Tensor

from zsampling.core.errors import InvalidArgument
from zsampling.core.guidance import EvaluationCounter, GuidanceContext, Guider
from zsampling.core.model import Conditioning, ModelAdapter
from zsampling.core.perturbation import PERTURBED, PerturbingRule
from zsampling.core.prediction import Prediction
from zsampling.core.rules import BatchedGuider, GuidanceCall
from zsampling.guiders.wrapped import DiffusersRule


class AutoGuidance(PerturbingRule, DiffusersRule):
    """``weak + scale * (cond - weak)``: the conditional prediction pushed away from a weaker
    model's conditional prediction instead of from the unconditional one (diffusers'
    ``AutoGuidance`` combination). Two conditional rows per step, no unconditional row.

    The weak model is a second model of the run, named by ``weak_model``, as W2SD takes it
    (``[models.weak]`` in a config; the embedded digits testbeds ship one). diffusers' own
    ``AutoGuidance`` makes its bad model by dropping layers of the same one; a separately
    trained weaker model is the paper's method. Bound to the weak model itself (W2SD's inversion
    runs on it), the guider gives that model's conditional prediction.
    """

    name: ClassVar[str] = "auto-guidance"
    aliases: ClassVar[tuple[str, ...]] = ("autoguidance",)
    diffusers_class: ClassVar[str] = "AutoGuidance"

    weak_model: str = Field("weak", description="Name of the run's weak model.")

    def perturbation(self) -> None:
        return None

    def perturbation_scale(self) -> float:
        return 1.0

    def diffusers_settings(self) -> dict[str, Any]:
        return {**super().diffusers_settings(), "auto_guidance_layers": [0], "dropout": 1.0}

    def combine_perturbed(
        self, cond: Tensor, uncond: Tensor | None, perturbed: Tensor | None, call: GuidanceCall
    ) -> Tensor:
        pred: Tensor = self.diffusers_object(call).forward(cond, perturbed).pred
        return pred

    def bind(
        self,
        model: ModelAdapter,
        cond: Conditioning,
        uncond: Conditioning | None,
        counter: EvaluationCounter | None = None,
    ) -> BatchedGuider:
        return WeakModelGuider(model, cond, uncond, self, counter or EvaluationCounter())


class WeakModelGuider(BatchedGuider):
    """AutoGuidance bound to one model: its conditional rows, and the weak model's.

    The run hands it the other bound guiders (`attach_models`) once all are bound: the weak one
    holds the weak model (counting into the same counter) and its conditionings.
    """

    rule: AutoGuidance

    def __post_init__(self) -> None:
        super().__post_init__()
        self.weak: BatchedGuider | None = None
        self.attached = False

    def attach_models(self, name: str, guiders: Mapping[str, Guider]) -> None:
        self.attached = True
        if name == self.rule.weak_model:
            return
        weak = guiders.get(self.rule.weak_model)
        if not isinstance(weak, BatchedGuider):
            others = sorted(k for k in guiders if k != name)
            raise InvalidArgument(
                "guider.weak_model",
                self.rule.weak_model,
                f"the name of a second model of the run (configured: {others or 'none'})",
            )
        self.weak = weak

    def __call__(
        self, x: Tensor, sigma: float, scale: float, context: GuidanceContext | None = None
    ) -> Prediction:
        context = context or GuidanceContext()
        if not self.attached:
            raise InvalidArgument(
                "guider.weak_model",
                self.rule.weak_model,
                "a run with a weak model: auto-guidance runs through zsampling.sample with "
                "extra_models (or a config's [models.weak])",
            )
        self.counter.guided_calls += 1
        batch = int(x.shape[0])
        embedded: float | None = None
        if self._embedded:
            embedded, scale = self.rule.embedded_scales(scale)
        positive = self._conditioning(context.conditioning)
        cond = self._evaluate(x, sigma, positive, embedded, cond_rows=batch)
        if self.weak is None or not self.rule.active(context) or math.isclose(scale, 1.0):
            return cond
        weak_positive = self.weak.conditionings.get(context.conditioning, self.weak.cond)
        self.counter.perturbed_rows += batch
        weak = self.weak._evaluate(x, sigma, weak_positive, embedded)
        self.state[PERTURBED] = weak.to(torch.float64)
        try:
            return self.rule.conditional_only(cond, self._call(x, sigma, scale, context))
        finally:
            self.state[PERTURBED] = None
