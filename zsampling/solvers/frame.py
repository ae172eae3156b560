"""What the k-diffusion-style solvers share: the ODE frame's derivative, levels by frame time, and
the weights of a polynomial through past derivatives integrated over one step.

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


def evaluate_at_tau(
    ctx: StepContext, y: Tensor, tau: float, like: LevelPoint, dtype: torch.dtype
) -> tuple[Prediction, LevelPoint]:
    """A further guided prediction of frame latent ``y`` at frame time ``tau``, and its level."""
    point = frame_point(tau, like, ctx)
    return ctx.evaluate(from_frame(y, point, dtype), point.sigma), point


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


def adams(
    x: Tensor,
    pred: Prediction,
    src: LevelPoint,
    dst: LevelPoint,
    history: Sequence[History],
    count: int,
    weights: Callable[[list[float]], list[float]],
) -> Tensor:
    """``y + sum_j w_j d_j`` over the derivatives at ``src`` and the ``count - 1`` newest history
    levels, ``w = weights(their frame times)``: the step of every Adams-Bashforth-type solver.
    One point (no history, or a budget of 1) is Euler."""
    if count == 1:
        return euler(x, pred, src, dst)
    nodes = [src.tau] + [h.point.tau for h in history[: count - 1]]
    y = to_frame(x, src)
    for weight, d in zip(weights(nodes), slopes(pred, src, history, count), strict=True):
        y = y + weight * d
    return from_frame(y, dst, x.dtype)
