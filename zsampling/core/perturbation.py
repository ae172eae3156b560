"""Guiders with a perturbed branch: the conditional prediction of a deliberately worse model.

Perturbed-attention guidance (PAG), smoothed-energy guidance (SEG), skip-layer guidance (SLG)
and AutoGuidance all add a branch: the conditional prediction of a *bad version* of the model
(its self-attention made an identity map, its attention energy smoothed, some of its layers
skipped, or a weaker model outright), and push the guided prediction away from it.

The contract is two small pieces:

- a `PerturbingRule` (a `GuidanceRule`) says which `Perturbation` it wants and when; the core
  evaluates that branch, counts its rows as ``perturbed_rows`` and hands the rule all branches;
- a model that can be perturbed (`Perturbable`) provides ``perturbed(perturbation)``, a context
  manager inside which its ``predict`` is the perturbed model. The diffusers adapters apply
  diffusers' own hooks (``diffusers.hooks``) there and remove them on leaving, also when the
  call fails. A model without it (the analytic model, a k-diffusion denoiser) is refused at bind
  time, naming the guider and the model.

**One call or two.** diffusers' hooks act on every row of the module they are registered on, so
the perturbed branch cannot share a batched call with the unperturbed ones: it is a separate model
call with the conditional rows only (diffusers' own guiders make the same separate call).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import torch
from torch import Tensor

from zsampling.core.errors import InvalidArgument
from zsampling.core.guidance import EvaluationCounter, GuidanceContext
from zsampling.core.model import Conditioning, ModelAdapter
from zsampling.core.prediction import Prediction
from zsampling.core.rules import BatchedGuider, GuidanceCall, GuidanceRule

PerturbationKind = Literal["attention-scores", "skip-layers", "smoothed-energy"]
"""``attention-scores``: self-attention becomes the identity map on its values (PAG);
``skip-layers``: whole transformer blocks (UNets: the self-attention) are skipped (SLG);
``smoothed-energy``: self-attention queries are blurred (SEG)."""


@dataclass(frozen=True)
class Perturbation:
    """What a perturbing guider asks the model to change for its extra branch.

    ``layers`` are indices into the model family's block stack (see the adapter's
    ``perturbation_layers``); None takes the family's default. ``blur_sigma`` is SEG's Gaussian
    blur width (ignored by the other kinds). ``guider`` names the guider, for messages.
    """

    kind: PerturbationKind
    guider: str
    layers: tuple[int, ...] | None = None
    blur_sigma: float = 0.0


@runtime_checkable
class Perturbable(Protocol):
    """A `ModelAdapter` that can evaluate a perturbed version of itself."""

    def perturbed(self, perturbation: Perturbation) -> AbstractContextManager[None]:
        """Inside the context, ``predict`` is the perturbed model; leaving it (normally or by an
        exception) restores the model exactly."""
        ...


def can_perturb(model: object) -> bool:
    return callable(getattr(model, "perturbed", None))


PERTURBED = "perturbed"
"""The key of the current call's perturbed branch in `GuidanceCall.state`."""


class PerturbingRule(GuidanceRule):
    """A rule that also combines a perturbed conditional branch.

    Subclasses set `perturbation` and `combine_perturbed`; `perturbs` says at which calls the
    branch is evaluated (by default whenever `perturbation_scale` is not 0).
    """

    def perturbation(self) -> Perturbation | None:
        """The perturbation of the model this rule's extra branch needs (None: another model)."""
        raise NotImplementedError(f"{type(self).__name__} must define perturbation()")

    def perturbation_scale(self) -> float:
        raise NotImplementedError(f"{type(self).__name__} must define perturbation_scale()")

    def perturbs(self, context: GuidanceContext) -> bool:
        """Whether this call evaluates the perturbed branch."""
        return not math.isclose(self.perturbation_scale(), 0.0)

    def combine_perturbed(
        self, cond: Tensor, uncond: Tensor | None, perturbed: Tensor | None, call: GuidanceCall
    ) -> Tensor:
        """The guided value from the branches this call evaluated (None: not evaluated)."""
        raise NotImplementedError(f"{type(self).__name__} must define combine_perturbed()")

    def bind(
        self,
        model: ModelAdapter,
        cond: Conditioning,
        uncond: Conditioning | None,
        counter: EvaluationCounter | None = None,
    ) -> BatchedGuider:
        if self.perturbation() is not None and not can_perturb(model):
            inner = getattr(model, "inner", model)  # the adapter behind the run's counting
            family = getattr(inner, "family", None) or type(inner).__name__
            raise InvalidArgument(
                "guider.use",
                self.name,
                f"a guider this model can run: {self.name} needs a model whose layers it can "
                f"perturb (the diffusers SD/SDXL/SD3/FLUX adapters and the digits UNets), and "
                f"{family} offers none; use a guider without a perturbed branch (e.g. 'cfg')",
            )
        return PerturbedGuider(model, cond, uncond, self, counter or EvaluationCounter())

    def combine_predictions(
        self, cond: Prediction, uncond: Prediction, call: GuidanceCall
    ) -> Prediction:
        return self._guided(cond, uncond, call)

    def conditional_only(self, cond: Prediction, call: GuidanceCall) -> Prediction:
        if call.state.get(PERTURBED) is None:
            return cond
        return self._guided(cond, None, call)

    def _guided(
        self, cond: Prediction, uncond: Prediction | None, call: GuidanceCall
    ) -> Prediction:
        space = self.resolved_space(call)
        perturbed: Prediction | None = call.state.get(PERTURBED)

        def value(part: Callable[[Prediction], Tensor]) -> Tensor:
            return self.combine_perturbed(
                part(cond),
                None if uncond is None else part(uncond),
                None if perturbed is None else part(perturbed),
                call,
            )

        def fallback() -> Prediction:  # where x does not determine the other half
            return Prediction(value(lambda p: p.part64("x0")), value(lambda p: p.part64("eps")))

        return Prediction.from_part(
            space, value(lambda p: p.part64(space)), call.x, call.alpha, call.s, fallback
        )


class PerturbedGuider(BatchedGuider):
    """A `BatchedGuider` that first evaluates the rule's perturbed branch when the call needs it
    (a separate model call with the conditional rows, inside ``model.perturbed(...)``)."""

    rule: PerturbingRule

    def __call__(
        self, x: Tensor, sigma: float, scale: float, context: GuidanceContext | None = None
    ) -> Prediction:
        context = context or GuidanceContext()
        self.state[PERTURBED] = None
        if self.rule.perturbs(context):  # its own interval, not CFG's (as in diffusers)
            embedded = self.rule.embedded_scales(scale)[0] if self._embedded else None
            positive = self._conditioning(context.conditioning)
            self.state[PERTURBED] = self.perturbed_branch(x, sigma, positive, embedded)
        try:
            return super().__call__(x, sigma, scale, context)
        finally:
            self.state[PERTURBED] = None

    def perturbed_branch(
        self, x: Tensor, sigma: float, positive: Conditioning, embedded: float | None
    ) -> Prediction:
        """The perturbed model's conditional prediction (float64, like the other branches)."""
        perturbation = self.rule.perturbation()
        assert perturbation is not None
        model: Any = self.model
        self.counter.perturbed_rows += int(x.shape[0])
        with model.perturbed(perturbation):
            return self._evaluate(x, sigma, positive, embedded).to(torch.float64)
