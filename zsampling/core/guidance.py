"""The guider contract: what a ``[guider]`` component makes, what the path calls, what is counted.

A guider *component* holds settings; ``bind(model, cond, uncond, counter)`` makes the run's
*guider* for one model and one batch of conditioning. The path calls that guider once per guided
prediction, ``guider(x, sigma, scale, context=...)``, with the scale of that call: Z-Sampling
denoises at ``guidance`` and inverts at ``inversion_guidance`` through the same guider, so the
scale is an argument of each call, never a setting.

Most guiders need only a combine rule: derive from `zsampling.core.rules.GuidanceRule` and the
base evaluates the branches in one batched model call, counts it, skips the branch a scale does
not need and calls your ``combine``. A guider that needs full control implements `Guider` itself.

Costs are counted by the core, whichever way a guider is written: `zsampling.core.sampling.sample`
hands ``bind`` a model that counts its own calls and rows, and counts the guided calls made.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import torch
from torch import Tensor

from zsampling.core.errors import ComponentFault, InvalidArgument
from zsampling.core.levels import Process, TimestepTable
from zsampling.core.model import Conditioning, ModelAdapter, embeds_guidance
from zsampling.core.prediction import Prediction, prediction_problem

Direction = Literal["denoise", "invert", "predict"]


@dataclass
class EvaluationCounter:
    """Model cost, counted where it is spent (tests, benchmarks and the manifest report it).

    ``guided_calls``: guided predictions asked for (one per path step); ``model_calls``: batched
    network calls; ``rows``: latent rows those calls evaluated; ``cond_rows`` and ``uncond_rows``:
    how many of the rows were conditional and unconditional (filled by `GuidanceRule` guiders);
    ``perturbed_rows``: rows of a perturbed branch (a perturbed model's or a weak model's
    conditional prediction: PAG, SEG, SLG, AutoGuidance; `zsampling.core.perturbation`).
    """

    guided_calls: int = 0
    model_calls: int = 0
    rows: int = 0
    cond_rows: int = 0
    uncond_rows: int = 0
    perturbed_rows: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class GuidanceContext:
    """Where a guided call is made, besides its level and scale (the path fills it in).

    ``level`` is the index of ``sigma`` in the schedule and ``steps`` the schedule's number of
    steps T (levels ``0 .. T``); ``direction`` is the path move asking (``denoise``, ``invert`` or a
    sampler's own ``predict``); ``conditioning`` names the conditioning used as the positive branch
    (``cond`` unless a move asks for another one the guider was given).
    """

    level: int | None = None
    steps: int | None = None
    direction: Direction = "predict"
    conditioning: str = "cond"


@runtime_checkable
class Guider(Protocol):
    """What ``bind`` returns and the path calls: a guided prediction for ``x`` at ``sigma``.

    ``sigma`` is a float level (k-diffusion's sigma; ``x`` lies in the model's own space, see
    `zsampling.core.levels.Process`), ``scale`` the guidance scale of this call (0: unconditional,
    1: conditional), ``context`` where on the path the call is made (None outside a path). The
    result is a `Prediction` for every row of ``x``.
    """

    def __call__(
        self, x: Tensor, sigma: float, scale: float, context: GuidanceContext | None = None
    ) -> Prediction: ...


@runtime_checkable
class GuiderComponent(Protocol):
    """``[guider]``: settings whose ``bind`` makes the run's `Guider` for one model's branches.

    ``cond`` and ``uncond`` are the batch's conditioning (``uncond`` is None when the model has no
    unconditional branch: then only scale 1 is possible). ``counter`` is the run's
    `EvaluationCounter`; the model handed to ``bind`` already counts its calls into it.
    """

    name: ClassVar[str]

    def bind(
        self,
        model: ModelAdapter,
        cond: Conditioning,
        uncond: Conditioning | None,
        counter: EvaluationCounter | None = None,
    ) -> Guider: ...


class CountedModel:
    """A model that adds each ``predict`` call (and its rows) to ``counter``; all else passes.

    It is also where an adapter's predictions are checked, once, where they are made: a
    `Prediction` shaped like the ``x`` given, else a `ComponentFault` of kind ``model`` naming the
    run's model (``main``, ``weak``), which a run turns into the adapter or outermost patch that
    made it. Unchecked, a wrong shape would be broadcast in the guider and blamed on it.
    """

    def __init__(self, model: ModelAdapter, counter: EvaluationCounter, name: str = "main") -> None:
        self.inner = model
        self.counter = counter
        self.name = name

    @property
    def process(self) -> Process:
        return self.inner.process

    @property
    def table(self) -> TimestepTable | None:
        return self.inner.table

    @property
    def dtype(self) -> torch.dtype:
        return self.inner.dtype

    @property
    def device(self) -> torch.device:
        return self.inner.device

    def latent_shape(self) -> tuple[int, ...]:
        return self.inner.latent_shape()

    def sigma_range(self) -> tuple[float, float]:
        return self.inner.sigma_range()

    def encode(
        self, prompts: Any, negative_prompts: Any = None
    ) -> tuple[Conditioning, Conditioning]:
        return self.inner.encode(prompts, negative_prompts)

    def predict(self, x: Tensor, sigma: Tensor, cond: Conditioning) -> Prediction:
        self._count(x)
        return self._checked(self.inner.predict(x, sigma, cond), x, "predict()")

    def decode(self, x: Tensor) -> Any:
        return self.inner.decode(x)

    def __getattr__(self, name: str) -> Any:  # the adapter's own extras (family, pipeline, ...)
        if name in ("inner", "counter", "name"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _count(self, x: Tensor) -> None:
        self.counter.model_calls += 1
        self.counter.rows += int(x.shape[0])

    def _checked(self, pred: Any, x: Tensor, call: str) -> Prediction:
        """``pred`` if it can be stepped with from ``x``, else the `ComponentFault` naming this
        model."""
        problem = prediction_problem(pred, x, "prediction", "the shape of the x it was given")
        if problem is None:
            return pred
        raise ComponentFault("model", self.name, f"{call} {problem}")


class CountedGuidedModel(CountedModel):
    """`CountedModel` for a model that takes the guidance scale itself (`GuidanceEmbedding`)."""

    def predict_guided(
        self, x: Tensor, sigma: Tensor, cond: Conditioning, scale: float
    ) -> Prediction:
        self._count(x)
        inner: Any = self.inner
        return self._checked(inner.predict_guided(x, sigma, cond, scale), x, "predict_guided()")


def counted(model: ModelAdapter, counter: EvaluationCounter, name: str = "main") -> ModelAdapter:
    """``model`` (the run's model ``name``) counting its calls into ``counter`` and checking its
    predictions (as it is, when it already does)."""
    if isinstance(model, CountedModel) and model.counter is counter:
        return model
    if embeds_guidance(model):
        return CountedGuidedModel(model, counter, name)
    return CountedModel(model, counter, name)


@dataclass
class CountedGuider:
    """A guider whose calls are added to ``counter`` (for guiders that do not count them)."""

    guider: Guider
    counter: EvaluationCounter = field(default_factory=EvaluationCounter)

    def __call__(
        self, x: Tensor, sigma: float, scale: float, context: GuidanceContext | None = None
    ) -> Prediction:
        self.counter.guided_calls += 1
        return self.guider(x, sigma, scale, context)


@dataclass
class ConditioningRouter:
    """One bound guider per named conditioning; each call goes to the one its context names.

    How a guider not built on `zsampling.core.rules.GuidanceRule` serves moves that ask for
    another conditioning (``path.denoise(..., conditioning="zag")``): it was bound once per name,
    with that conditioning as its ``cond``, and never needs to know the names.
    """

    routes: dict[str, Guider]

    def __call__(
        self, x: Tensor, sigma: float, scale: float, context: GuidanceContext | None = None
    ) -> Prediction:
        name = (context or GuidanceContext()).conditioning
        guider = self.routes.get(name)
        if guider is None:
            raise InvalidArgument(
                "conditioning", name, f"one of the guider's conditionings {sorted(self.routes)}"
            )
        return guider(x, sigma, scale, context)


#: `call_problem`'s answers for instances of a class (their ``__call__`` is the class's).
_CLASS_PROBLEMS: dict[type, str | None] = {}


def call_problem(guider: Any) -> str | None:
    """Why the path cannot call ``guider`` as a `Guider`, or None."""
    if not callable(guider):
        return f"bind() returned {type(guider).__name__}, which is not callable"
    kind = type(guider)
    by_class = kind.__module__ not in ("builtins", "functools") and "__call__" in vars(kind)
    if by_class and kind in _CLASS_PROBLEMS:  # inspecting a signature costs more than a step
        return _CLASS_PROBLEMS[kind]
    problem = _signature_problem(guider)
    if by_class:
        _CLASS_PROBLEMS[kind] = problem
    return problem


def _signature_problem(guider: Any) -> str | None:
    try:
        signature = inspect.signature(guider)
    except (TypeError, ValueError):
        return None  # a C callable: nothing to check
    try:
        signature.bind(None, 0.0, 0.0, context=None)
    except TypeError:
        return (
            f"bind() returned {type(guider).__name__}, callable as {signature}; the path calls it "
            "as guider(x, sigma, scale, context=None)"
        )
    return None
