"""Solvers: one step between two levels, the same code downwards (denoise) and upwards (invert).

A solver sees the latent, the model's prediction at the step's source level, both levels'
coefficients and, for multistep methods, the previous prediction made *in the same direction* at
the neighbouring level (kept by `zsampling.core.path.SamplingPath`, never hidden inside the solver).

A solver whose ``step`` also takes a ``ctx`` argument gets a `StepContext`: the whole same-direction
history (for methods of order 3 and more), further guided model evaluations inside the step (Heun,
DPM-Solver-2, single-step DPM-Solver++), the run's seeded noise (ancestral and SDE methods) and a
place to leave state for the next step (UniPC's corrected latent). The five-argument form stays
valid: the path decides once per run which form a solver has, so plain solvers pay nothing.

All arithmetic runs in float64 and the result comes back in the caller's dtype.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor

from zsampling.core.casts import cast
from zsampling.core.component import Component
from zsampling.core.prediction import Prediction

OdeFrame = Literal["sigma", "t"]
"""The variables k-diffusion-style formulas integrate in: ``sigma`` (time ``sigma``, latent
``x / alpha``: VP and VE models, as k-diffusion and ComfyUI do) or ``t`` (time ``t = s``, the
native latent: rectified-flow models, as ComfyUI's flow sampling and diffusers' FlowMatch
schedulers do)."""


@dataclass(frozen=True)
class LevelPoint:
    """A level with its coefficients: ``sigma`` and ``x = alpha * x0 + s * eps`` there.

    ``ode`` names the frame a k-diffusion-style solver works in at this level (see `OdeFrame`):
    in it the latent is ``y = x / scale`` at time ``tau``, and ``(y - x0) / tau`` is the derivative
    k-diffusion's formulas call ``d``.
    """

    sigma: float
    alpha: float
    s: float
    ode: OdeFrame = "sigma"

    @property
    def tau(self) -> float:
        """The frame's time: ``sigma`` (VP/VE) or ``t = s`` (flow)."""
        return self.s if self.ode == "t" else self.sigma

    @property
    def scale(self) -> float:
        """``x = scale * y``: ``alpha`` in the sigma frame, 1 in the t frame."""
        return 1.0 if self.ode == "t" else self.alpha

    @property
    def lam(self) -> float:
        """Half log-SNR ``log(alpha / s)``, DPM-Solver's time variable (+inf at sigma 0)."""
        if self.s == 0.0:
            return math.inf
        if self.alpha == 0.0:
            return -math.inf
        return math.log(self.alpha) - math.log(self.s)


class History(NamedTuple):
    """The previous prediction in the same direction, made at the level adjacent to the source
    (one per step: a named tuple, cheaper to make than a frozen dataclass). ``state`` is what that
    step's solver left with `StepContext.remember` (None if nothing)."""

    point: LevelPoint
    prediction: Prediction
    state: Any = None

    @property
    def x0(self) -> Tensor:
        """The prediction's ``x0`` (derived only here, by a multistep solver that uses it)."""
        return self.prediction.x0


class StepContext:
    """What a step may ask of the path besides its own prediction (the ``ctx`` of a solver whose
    ``step`` takes one).

    - ``history``: earlier predictions in the same direction on the current path, newest first
      (``history[0]`` is the ``history`` argument); empty after a turn or a renoise.
    - ``evaluate(x, sigma)``: one more guided prediction, at any level, with the step's guidance
      scale, model and conditioning; counted like every other model call.
    - ``noise(x)``: standard normal noise shaped like ``x`` from the run's seeded per-item
      generators, so a stochastic step is reproducible and independent of batching.
    - ``entropy(rows)``: one integer per item from the same generators, to seed a noise source that
      lives longer than a step (a Brownian tree).
    - ``point(sigma)``: the coefficients of any level (for intermediate stages).
    - ``remember(state)``: kept in this step's `History` for the next step in the same direction.
    - ``direction``, ``index`` (the source level's index) and ``steps`` (T) say where the step is.

    A stochastic or ancestral solver must step deterministically when ``direction`` is
    ``"invert"``: a zag is its deterministic counterpart's inversion (docs/concepts.md).
    """

    __slots__ = (
        "_entropy",
        "_evaluate",
        "_noise",
        "_point",
        "direction",
        "history",
        "index",
        "remembered",
        "steps",
    )

    def __init__(
        self,
        *,
        direction: Literal["denoise", "invert"],
        index: int,
        steps: int,
        history: tuple[History, ...],
        evaluate: Callable[[Tensor, float], Prediction],
        noise: Callable[[Tensor], Tensor],
        point: Callable[[float], LevelPoint],
        entropy: Callable[[int], list[int]] | None = None,
    ) -> None:
        self._entropy = entropy
        self.direction = direction
        self.index = index
        self.steps = steps
        self.history = history
        self._evaluate = evaluate
        self._noise = noise
        self._point = point
        self.remembered: Any = None

    def evaluate(self, x: Tensor, sigma: float) -> Prediction:
        """A further guided prediction of ``x`` at level ``sigma`` (see the class docstring)."""
        return self._evaluate(x, sigma)

    def noise(self, x: Tensor) -> Tensor:
        """Seeded standard normal noise shaped like ``x``."""
        return self._noise(x)

    def entropy(self, rows: int) -> list[int]:
        """One seed per item from the run's generators (from torch's global generator without
        them, as `noise` does)."""
        if self._entropy is not None:
            return self._entropy(rows)
        return torch.randint(0, 2**63 - 1, (rows,)).tolist()

    def point(self, sigma: float) -> LevelPoint:
        """The level ``sigma`` with its coefficients, in the run's process."""
        return self._point(sigma)

    def remember(self, state: Any) -> None:
        """Leave ``state`` for the next step in this direction (its ``history[0].state``)."""
        self.remembered = state


def to_frame(x: Tensor, point: LevelPoint) -> Tensor:
    """``x`` in the point's ODE frame (``y = x / scale``), in float64."""
    y = x.to(torch.float64)
    return y if point.scale == 1.0 else y / point.scale


def from_frame(y: Tensor, point: LevelPoint, dtype: torch.dtype) -> Tensor:
    """A frame latent back in native space and the caller's dtype."""
    return cast(y if point.scale == 1.0 else y * point.scale, dtype)


def takes_context(solver: object) -> bool:
    """Whether ``solver.step`` accepts a ``ctx`` (asked once per path, not per step)."""
    step = getattr(solver, "step", None)
    if step is None:
        return False
    try:
        return "ctx" in inspect.signature(step).parameters
    except (TypeError, ValueError):
        return False


@runtime_checkable
class Solver(Protocol):
    """One step from ``src`` to ``dst``; ``history`` is None when none applies.

    A solver may add a sixth parameter ``ctx`` (a `StepContext`) to its ``step``; see the module
    docstring.
    """

    name: ClassVar[str]
    order: ClassVar[int]

    def step(
        self,
        x: Tensor,
        pred: Prediction,
        src: LevelPoint,
        dst: LevelPoint,
        history: History | None,
    ) -> Tensor: ...


def ddim_step(x: Tensor, pred: Prediction, dst: LevelPoint) -> Tensor:
    """``x' = alpha_dst * x0 + s_dst * eps``: DDIM, identical to deterministic Euler in sigma."""
    return cast(_first_order(pred, dst), x.dtype)


def _first_order(pred: Prediction, dst: LevelPoint) -> Tensor:
    """``alpha_dst * x0 + s_dst * eps`` in float64 (a new tensor: the prediction is untouched)."""
    return pred.step_to(dst.alpha, dst.s)


class DDIM(Component):
    """First-order step (DDIM; equal to k-diffusion's deterministic Euler in exact arithmetic).

    It inverts exactly by the same formula: the step from ``a`` to ``b`` and back, with the model
    evaluated at the same points, returns the start.
    """

    name: ClassVar[str] = "ddim"
    order: ClassVar[int] = 1
    renoises: ClassVar[bool] = True
    """Steps with a prediction's renoising branch (CFG++; see `Prediction`): ``step_to`` does."""

    def step(
        self, x: Tensor, pred: Prediction, src: LevelPoint, dst: LevelPoint, history: History | None
    ) -> Tensor:
        return ddim_step(x, pred, dst)


class Euler(DDIM):
    """k-diffusion's ``sample_euler`` step (no churn); the same update as `DDIM` in native space."""

    name: ClassVar[str] = "euler"


class DPMSolverPP2M(Component):
    """DPM-Solver++(2M), the data-prediction multistep solver (k-diffusion ``sample_dpmpp_2m``).

    The second-order correction extrapolates ``x0`` from the previous step *in the same
    direction*: a denoise uses the previous denoise's prediction, an invert the previous invert's.
    How it inverts, therefore: a full inversion (many upward steps) is second order; an isolated
    upward step, such as Z-Sampling's zag, has no upward history and is first order (DDIM), so it
    never extrapolates across a turn of the path. A step into sigma 0 is first order, as in both
    k-diffusion and diffusers.

    With a renoising branch (CFG++, see `Prediction`) the first-order part renoises with it and
    the correction extrapolates from the previous step's renoising ``x0`` (the unconditional one
    under CFG++), as ComfyUI's ``sample_dpmpp_2m_cfg_pp`` does.
    """

    name: ClassVar[str] = "dpmpp-2m"
    order: ClassVar[int] = 2
    renoises: ClassVar[bool] = True

    def step(
        self, x: Tensor, pred: Prediction, src: LevelPoint, dst: LevelPoint, history: History | None
    ) -> Tensor:
        first = _first_order(pred, dst)
        h = dst.lam - src.lam
        if history is None or not math.isfinite(h) or h == 0.0:
            return first.to(x.dtype)
        r = (src.lam - history.point.lam) / h
        # x' = first-order step + alpha_dst (1 - e^-h) (D - x0), where D - x0 = (x0 - x0_prev) / 2r
        gain = dst.alpha * -math.expm1(-h) / (2.0 * r)
        delta = pred.x0.to(torch.float64) - history.prediction.renoising.x0.to(torch.float64)
        return (first + gain * delta).to(x.dtype)
