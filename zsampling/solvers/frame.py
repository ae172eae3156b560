"""What the k-diffusion-style solvers share: the ODE frame's derivative, levels by frame time,
the weights of a polynomial through past derivatives integrated over one step, and the two
family bases built on them (`FrameSolver`, Euler as fallback; `Adams`, the multistep ones).

In the frame of `zsampling.core.solvers.LevelPoint` the probability-flow ODE is ``dy/dtau = d``
with ``d = (y - x0) / tau``; from ``y = x / scale`` and ``x = alpha x0 + s eps`` that is ``eps``
in the sigma frame and ``eps - x0`` in the t frame. Taking it from the prediction rather than
dividing by ``tau`` keeps it defined at ``tau = 0``, where an inversion starts, and lets a
multistep solver rebuild past derivatives from its `History` alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from zsampling.core.prediction import Prediction
from zsampling.core.solvers import History, LevelPoint, StepContext, from_frame, to_frame
from zsampling.solvers.family import Family, Step


def slope(pred: Prediction, point: LevelPoint) -> Tensor:
    """``dy/dtau`` at ``point`` for the latent ``pred`` was made from, in float64."""
    eps = pred.eps.to(torch.float64)
    return eps if point.ode == "sigma" else eps - pred.x0.to(torch.float64)


def frame_point(tau: float, like: LevelPoint, ctx: StepContext) -> LevelPoint:
    """The level whose frame time is ``tau`` in ``like``'s frame (sigma itself, or flow ``t``),
    with its coefficients."""
    if like.ode == "sigma":
        return ctx.point(tau)
    return ctx.point(math.inf if tau >= 1.0 else tau / (1.0 - tau))


def euler(x: Tensor, pred: Prediction, src: LevelPoint, dst: LevelPoint) -> Tensor:
    """One Euler step in the frame (the same latent as DDIM), back in the caller's dtype."""
    y = to_frame(x, src) + slope(pred, src) * (dst.tau - src.tau)
    return from_frame(y, dst, x.dtype)


def slopes(
    pred: Prediction, src: LevelPoint, history: Sequence[History], count: int
) -> list[Tensor]:
    """The derivative at ``src`` then at the ``count - 1`` newest history levels."""
    return [slope(pred, src)] + [slope(h.prediction, h.point) for h in history[: count - 1]]


@lru_cache(maxsize=8)
def _gauss_legendre(points: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(points)


def lagrange_weights(
    nodes: Sequence[float],
    start: float,
    end: float,
    warp: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[float]:
    """``w_j = integral from start to end of L_j(warp(tau)) dtau``, ``L_j`` the Lagrange basis
    through ``warp(nodes)`` (``warp``, elementwise on arrays, the identity when None).

    Gauss-Legendre quadrature: exact for the polynomial (no warp) with ``len(nodes)`` points; a
    smooth warp gets 32 points, far below float64 rounding for the few-node bases used here.
    """
    u, w = _gauss_legendre(32 if warp is not None else max(1, len(nodes)))
    half, mid = (end - start) / 2.0, (end + start) / 2.0
    f = (lambda v: v) if warp is None else warp
    at, knots = f(mid + half * u), f(np.asarray(nodes, dtype=np.float64)).tolist()
    weights = []
    for j, knot in enumerate(knots):
        basis = np.ones_like(at)
        for k, other in enumerate(knots):
            if k != j:
                basis = basis * (at - other) / (knot - other)
        weights.append(float(half * np.dot(w, basis)))
    return weights


class FrameSolver(Family):
    """A deterministic solver in the ODE frame (a base class, not a registered solver): Euler is
    its fallback, by default for the step into ``tau = 0``, where the derivative is undefined for
    a second evaluation."""

    def falls_back(self, here: Step) -> bool:
        return here.dst.tau == 0.0

    def fallback(self, here: Step) -> Tensor:
        return euler(here.x, here.pred, here.src, here.dst)

    def evaluate_at(self, here: Step, y: Tensor, tau: float) -> tuple[Prediction, LevelPoint]:
        """A further guided prediction of frame latent ``y`` at frame time ``tau``, and its
        level."""
        point = frame_point(tau, here.src, here.ctx)
        return here.ctx.evaluate(from_frame(y, point, here.x.dtype), point.sigma), point


class Adams(FrameSolver):
    """The Adams-Bashforth-type family (a base class, not a registered solver): ``y + sum_j w_j
    d_j`` over the derivatives at the source and the newest ``points - 1`` history levels of the
    same direction, with subclass `weights` for their frame times. One point (no history, a
    budget of 1, by default the step into sigma 0) is Euler."""

    max_order: int

    def points(self, here: Step) -> int:
        """How many derivatives this step combines."""
        return 1 if here.dst.tau == 0.0 else min(self.max_order, 1 + len(here.ctx.history))

    def weights(self, nodes: list[float], here: Step) -> list[float]:
        """The weight of each derivative, given the frame times ``nodes`` (source first)."""
        raise NotImplementedError

    def falls_back(self, here: Step) -> bool:
        return self.points(here) == 1

    def advance(self, here: Step) -> Tensor:
        count = self.points(here)
        history = here.ctx.history
        nodes = [here.src.tau] + [h.point.tau for h in history[: count - 1]]
        y = here.y
        derivatives = slopes(here.pred, here.src, history, count)
        for weight, d in zip(self.weights(nodes, here), derivatives, strict=True):
            y = y + weight * d
        return here.land(y)
