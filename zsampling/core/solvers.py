"""Solvers: one step between two levels, the same code downwards (denoise) and upwards (invert).

A solver sees the latent, the model's prediction at the step's source level, both levels'
coefficients and, for multistep methods, the previous prediction made *in the same direction* at
the neighbouring level (kept by `zsampling.core.path.SamplingPath`, never hidden inside the solver).

All arithmetic runs in float64 and the result comes back in the caller's dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor

from zsampling.core.casts import cast
from zsampling.core.component import Component
from zsampling.core.prediction import Prediction


@dataclass(frozen=True)
class LevelPoint:
    """A level with its coefficients: ``sigma`` and ``x = alpha * x0 + s * eps`` there."""

    sigma: float
    alpha: float
    s: float

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
    (one per step: a named tuple, cheaper to make than a frozen dataclass)."""

    point: LevelPoint
    prediction: Prediction

    @property
    def x0(self) -> Tensor:
        """The prediction's ``x0`` (derived only here, by a multistep solver that uses it)."""
        return self.prediction.x0


@runtime_checkable
class Solver(Protocol):
    """One step from ``src`` to ``dst``; ``history`` is None when none applies."""

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
    """

    name: ClassVar[str] = "dpmpp-2m"
    order: ClassVar[int] = 2

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
        delta = pred.x0.to(torch.float64) - history.x0.to(torch.float64)
        return (first + gain * delta).to(x.dtype)
