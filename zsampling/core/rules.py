"""`GuidanceRule`: a guider written as its combine rule; `BatchedGuider`: what it binds to.

A guider plugin derives from `GuidanceRule`, adds its settings as fields and writes ``combine``::

    class MyGuidance(GuidanceRule):
        name: ClassVar[str] = "my-guidance"

        def combine(self, cond, uncond, call):
            return uncond + call.scale * (cond - uncond)

The base does the rest, identically for every rule:

- **branches in one batched call**: the unconditional and the conditional rows are concatenated
  (``torch.cat([uncond, cond])``) and evaluated in one ``model.predict`` call;
- **only the branches a call needs**: the conditional branch alone at scale 1 and outside the
  guidance interval (``start``/``stop``, as in diffusers' guiders), the unconditional branch alone
  at scale 0 when the rule says that is all it gives (`GuidanceRule.unconditional_at_zero`);
  ``skip_unused_branches = false`` evaluates both every time (same result, the released
  Z-Sampling code's cost);
- **counting**: guided calls, model calls, rows and branch rows go to the run's counter;
- **a consistent pair**: ``combine`` works on one quantity (``eps``, ``x0`` or ``velocity``; see
  `GuidanceRule.space`), and the other half of the `Prediction` is derived from ``x`` so that the
  guided pair stays consistent (`Prediction.from_part`);
- **models that take the scale themselves** (`zsampling.core.model.GuidanceEmbedding`, e.g.
  guidance-distilled FLUX.1-dev) get each call's scale as an input of every branch they evaluate
  (`GuidanceRule.embedded_scales`): one conditional call by default, and no combine; a rule that
  also combines branches there (true CFG, `zsampling.guiders.TrueCFG`) says with which scale;
- **float64 combination**: ``combine`` gets the branches' values in float64 and the other half
  is derived from ``x`` in float64, so a branch's large ``x0 = x / alpha`` at high noise is never
  rounded and then multiplied by the scale; the guided pair stays in float64, the precision the
  solver steps in, and the step's result is rounded once, to ``x``'s dtype.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from pydantic import Field, model_validator
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.errors import ComponentFault, InvalidArgument
from zsampling.core.guidance import EvaluationCounter, GuidanceContext, counted
from zsampling.core.levels import Process
from zsampling.core.model import Conditioning, ModelAdapter, embeds_guidance
from zsampling.core.prediction import Prediction, Space


class GuidanceCall(NamedTuple):
    """Everything a combine rule may use about one guided call (read-only; a named tuple because
    one is made per guided call, and a frozen dataclass costs several times as much to make).

    ``scale`` is the guidance scale of this call (Z-Sampling's zig and zag differ); ``sigma``,
    ``alpha`` and ``s`` describe the level (``x = alpha * x0 + s * eps``); ``context`` says where
    on the path the call is made (level index, number of steps, direction, conditioning name);
    ``x`` is the latent the model saw and ``process`` the model's. ``state`` is one dict per bound
    guider (one batch of a run): a stateful rule (momentum) keeps its state there, never on the
    frozen settings.
    """

    scale: float
    sigma: float
    alpha: float
    s: float
    context: GuidanceContext
    x: Tensor
    process: Process
    state: dict[str, Any]


class GuidanceRule(Component):
    """Base of guiders written as a combine rule (see the module docstring).

    Subclasses set ``name`` and override `combine` (tensors of one quantity) or, for a rule on
    whole predictions, `combine_predictions`. The fields below are every rule's settings. A rule
    may add a ``space`` field (``"eps"``, ``"x0"`` or ``"velocity"``) to choose the quantity
    `combine` works on; without one it is the model's own: velocity for flow models, eps
    otherwise (what a diffusers pipeline hands its guider).
    """

    skip_unused_branches: bool = Field(
        True,
        description="Evaluate only the branch a call needs (scale 1, outside [start, stop), "
        "or scale 0 for rules that give the unconditional branch there).",
    )
    start: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Guidance interval: the fraction of steps after which guidance starts "
        "(diffusers' guiders' start; 0 = from the first step).",
    )
    stop: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Guidance interval: the fraction of steps after which guidance stops; "
        "outside [start, stop) a call is conditional only, as at scale 1.",
    )

    @model_validator(mode="after")
    def _interval(self) -> GuidanceRule:
        if self.stop < self.start:
            raise ValueError(f"stop ({self.stop}) must be >= start ({self.start})")
        return self

    def bind(
        self,
        model: ModelAdapter,
        cond: Conditioning,
        uncond: Conditioning | None,
        counter: EvaluationCounter | None = None,
    ) -> BatchedGuider:
        return BatchedGuider(model, cond, uncond, self, counter or EvaluationCounter())

    def combine(self, cond: Tensor, uncond: Tensor, call: GuidanceCall) -> Tensor:
        """The guided value of one quantity from the two branches' values (same shape)."""
        raise NotImplementedError(f"{type(self).__name__} must define combine()")

    def combine_predictions(
        self, cond: Prediction, uncond: Prediction, call: GuidanceCall
    ) -> Prediction:
        """The guided prediction: `combine` in ``space``, the other half derived from ``x``.

        Where ``x`` does not determine the other half (``eps`` at alpha 0, ``x0`` at sigma 0), it
        is the CFG combination of that half at the same scale. ``combine`` gets float64 values
        and the pair stays in float64: the solver steps in float64, so rounding it to ``x``'s
        dtype here would only be undone there (three kernels per call, and a rounding).
        """
        space = self.resolved_space(call)
        guided = self.combine(cond.part64(space), uncond.part64(space), call)
        if not isinstance(guided, Tensor) or guided.shape != call.x.shape:
            # Checked here, not by the path: the other half is derived from x by broadcasting,
            # which would either fail in the core (blaming the sampler) or hide the shape.
            got = tuple(guided.shape) if isinstance(guided, Tensor) else type(guided).__name__
            raise ComponentFault.of(
                "guider",
                self,
                f"combine() returned {got}; expected {tuple(call.x.shape)}, the latent's shape",
            )

        def fallback() -> Prediction:  # only where x does not determine the other half
            return uncond.to(torch.float64).guided(cond.to(torch.float64), call.scale)

        return Prediction.from_part(space, guided, call.x, call.alpha, call.s, fallback)

    def resolved_space(self, call: GuidanceCall) -> Space:
        """The rule's ``space`` setting, or the model's own quantity when it has none."""
        # A field's value is in the instance's __dict__; pydantic answers a missing attribute
        # through an exception, which costs more than the combination on a small latent.
        space: Space | None = self.__dict__.get("space") or _class_space(type(self))
        if space is not None:
            return space
        return "velocity" if call.process.name == "flow" else "eps"

    def conditional_only(self, cond: Prediction, call: GuidanceCall) -> Prediction:
        """The result of a call that needs only the conditional branch (scale 1, or outside the
        guidance interval): that branch, unless a rule says otherwise."""
        return cond

    def unconditional_at_zero(self) -> bool:
        """Whether scale 0 gives the unconditional prediction exactly (then only that branch is
        evaluated). True for CFG; False by default, since e.g. CFG-Zero* rescales it."""
        return False

    def conditional_at_one(self) -> bool:
        """Whether scale 1 gives the conditional branch alone (then only it is evaluated). True
        for CFG and most rules; False for a rule that still uses the unconditional branch there
        (CFG++ renoises with it)."""
        return True

    def embedded_scales(self, scale: float) -> tuple[float, float]:
        """For a model that takes the guidance scale as an input (`GuidanceEmbedding`): the scale
        its network gets in every branch, and the scale this rule then combines the branches
        with. By default the call's scale goes to the network and nothing is combined (one
        conditional call), which is how a guidance-distilled model is meant to be run."""
        return scale, 1.0

    def active(self, context: GuidanceContext) -> bool:
        """Whether guidance applies at this call: diffusers' interval rule,
        ``int(start * T) <= level < int(stop * T)``, on the level the model is evaluated at."""
        if context.level is None or context.steps is None:
            return True
        return int(self.start * context.steps) <= context.level < int(self.stop * context.steps)


_ROWS: dict[tuple[int, float], Tensor] = {}
"""`BatchedGuider._levels`'s tensors, by rows and level (CPU, float64, read-only)."""


@functools.cache
def _class_space(rule: type) -> Space | None:
    """A ``space`` a rule class sets as a class attribute (not a field), if any."""
    return getattr(rule, "space", None)


@dataclass
class BatchedGuider:
    """A `GuidanceRule` bound to one model and one batch's conditioning (a `Guider`)."""

    model: ModelAdapter
    cond: Conditioning
    uncond: Conditioning | None
    rule: GuidanceRule
    counter: EvaluationCounter = field(default_factory=EvaluationCounter)
    conditionings: dict[str, Conditioning] = field(default_factory=dict)
    """Further named conditionings a path move may pick as the positive branch."""
    state: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.model = counted(self.model, self.counter)
        self.conditionings = {"cond": self.cond, **self.conditionings}
        if self.uncond is not None:
            self.conditionings.setdefault("uncond", self.uncond)
        # Per-call work done once: a path calls a guider with the same few levels, scales and
        # conditionings again and again, and on a small network each small kernel counts.
        self._embedded = embeds_guidance(self.model)
        self._both: dict[str, Conditioning] = {}

    def __call__(
        self, x: Tensor, sigma: float, scale: float, context: GuidanceContext | None = None
    ) -> Prediction:
        context = context or GuidanceContext()
        self.counter.guided_calls += 1
        positive = self._conditioning(context.conditioning)
        batch = x.shape[0]
        embedded: float | None = None
        if self._embedded:
            embedded, scale = self.rule.embedded_scales(scale)
        if not self.rule.active(context) or (
            math.isclose(scale, 1.0) and self.rule.conditional_at_one()
        ):
            mode = "cond"
        elif scale == 0.0 and self.rule.unconditional_at_zero():
            mode = "uncond"
        else:
            mode = "both"
        if self.uncond is None and mode != "cond":
            raise InvalidArgument(
                "guidance", scale, "a scale other than 1 needs an unconditional branch"
            )
        if self.uncond is None or (self.rule.skip_unused_branches and mode == "cond"):
            cond = self._evaluate(x, sigma, positive, embedded, cond_rows=batch)
            return self.rule.conditional_only(cond, self._call(x, sigma, scale, context))
        if self.rule.skip_unused_branches and mode == "uncond":
            return self._evaluate(x, sigma, self.uncond, embedded, uncond_rows=batch)
        both = self._both_branches(context.conditioning, positive)
        pair = self._evaluate(
            torch.cat([x, x]), sigma, both, embedded, cond_rows=batch, uncond_rows=batch
        )
        if mode == "both":  # widened before it is cut: one cast over both branches' rows
            uncond, cond = pair.to(torch.float64).chunk(2)
            return self.rule.combine_predictions(cond, uncond, self._call(x, sigma, scale, context))
        uncond, cond = pair.chunk(2)
        if mode == "cond":
            return self.rule.conditional_only(cond, self._call(x, sigma, scale, context))
        return uncond

    def at_scales(
        self,
        x: Tensor,
        sigma: float,
        scales: tuple[float, ...],
        context: GuidanceContext | None = None,
    ) -> list[Prediction]:
        """The guided predictions at each of ``scales`` from one evaluation of both branches
        (one guided call): each equal to what ``self(x, sigma, scale, context)`` returns. A
        stateful rule combines the first scale with its state and the others with copies, so
        the extra scales leave its state as one call would. Models that take the scale as an
        input, batches without an unconditional branch, and guiders whose call evaluates other
        branches (a subclass's own ``__call__``: perturbed or weak-model branches) get one call
        per scale."""
        context = context or GuidanceContext()
        own_call = type(self).__call__ is not BatchedGuider.__call__
        if self._embedded or self.uncond is None or not scales or own_call:
            return [self(x, sigma, scale, context) for scale in scales]
        self.counter.guided_calls += 1
        batch = x.shape[0]
        both = self._both_branches(context.conditioning, self._conditioning(context.conditioning))
        pair = self._evaluate(
            torch.cat([x, x]), sigma, both, None, cond_rows=batch, uncond_rows=batch
        )
        uncond, cond = pair.to(torch.float64).chunk(2)
        out = []
        for k, scale in enumerate(scales):
            call = self._call(x, sigma, scale, context)
            if k:
                call = call._replace(state=copy.deepcopy(self.state))
            if not self.rule.active(context) or (
                math.isclose(scale, 1.0) and self.rule.conditional_at_one()
            ):
                out.append(self.rule.conditional_only(cond, call))
            elif scale == 0.0 and self.rule.unconditional_at_zero():
                out.append(uncond)
            else:
                out.append(self.rule.combine_predictions(cond, uncond, call))
        return out

    def _conditioning(self, name: str) -> Conditioning:
        try:
            return self.conditionings[name]
        except KeyError:
            raise InvalidArgument(
                "conditioning",
                name,
                f"one of the guider's conditionings {sorted(self.conditionings)}",
            ) from None

    def _both_branches(self, name: str, positive: Conditioning) -> Conditioning:
        """The unconditional rows, then ``positive``'s, per key: concatenated once per run."""
        both = self._both.get(name)
        if both is None:
            assert self.uncond is not None
            both = self._both[name] = {
                k: torch.cat([self.uncond[k], positive[k]]) for k in positive
            }
        return both

    def _call(
        self, x: Tensor, sigma: float, scale: float, context: GuidanceContext
    ) -> GuidanceCall:
        process = self.model.process
        alpha, s = process.point(float(sigma))
        return GuidanceCall(scale, float(sigma), alpha, s, context, x, process, self.state)

    def _levels(self, x: Tensor, sigma: float) -> Tensor:
        """One float64 level per row: the same tensor for the same call shape, in this run and
        the next (runs repeat their schedule), never written."""
        key = (int(x.shape[0]), float(sigma))
        levels = _ROWS.get(key)
        if levels is None:
            if len(_ROWS) >= 4096:
                _ROWS.clear()
            levels = _ROWS[key] = torch.full(key[:1], key[1], dtype=torch.float64)
        return levels

    def _evaluate(
        self,
        x: Tensor,
        sigma: float,
        cond: Conditioning,
        embedded: float | None,
        cond_rows: int = 0,
        uncond_rows: int = 0,
    ) -> Prediction:
        """One model call; ``embedded`` is the scale a guidance-embedding model gets (else None)."""
        self.counter.cond_rows += cond_rows
        self.counter.uncond_rows += uncond_rows
        if embedded is None:
            return self.model.predict(x, self._levels(x, sigma), cond)
        model: Any = self.model
        prediction: Prediction = model.predict_guided(x, self._levels(x, sigma), cond, embedded)
        return prediction
