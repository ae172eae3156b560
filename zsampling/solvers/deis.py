"""DEIS, the time-quadratic Adams-Bashforth variant tAB-DEIS (Zhang & Chen 2023), on the
derivative in the frame, as ComfyUI's ``deis`` (``deis_mode="tab"``) uses it."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import ClassVar

import numpy as np
from pydantic import Field

from zsampling.solvers.family import Step
from zsampling.solvers.frame import Adams, lagrange_weights

SIGMA_MIN, SIGMA_MAX, T_MIN = 0.002, 80.0, 1e-3
"""The linear-beta VP SDE whose time DEIS interpolates in: sigma(T_MIN) = SIGMA_MIN and
sigma(1) = SIGMA_MAX (the EDM range, the fit diff-sampler and ComfyUI use for any model)."""


@lru_cache(maxsize=1)
def _betas() -> tuple[float, float]:
    """``(beta_d, beta_min)`` with ``log(1 + sigma(u)^2) = beta_d u^2 / 2 + beta_min u``."""
    top, bottom = math.log1p(SIGMA_MAX**2), math.log1p(SIGMA_MIN**2)
    beta_d = 2.0 * (bottom / T_MIN - top) / (T_MIN - 1.0)
    return beta_d, top - beta_d / 2.0


def vp_time(tau: np.ndarray) -> np.ndarray:
    """The VP SDE's time ``u`` of frame times ``tau`` (the root of the quadratic above)."""
    beta_d, beta_min = _betas()
    root: np.ndarray = np.sqrt(beta_min**2 + 2.0 * beta_d * np.log1p(tau * tau))
    return (root - beta_min) / beta_d


class DEIS(Adams):
    """``dy/dtau`` at this level and up to ``max_order - 1`` previous levels of the same
    direction, interpolated by a polynomial in the VP time ``u(tau)`` and integrated over the step
    in ``tau`` (Gauss-Legendre; ComfyUI sums 10 000 rectangles instead, a 1e-4-relative
    difference in the weights).

    Lower orders at the start of a path and after a turn (an isolated zag is Euler); a step into
    sigma 0 is Euler. The same formula inverts on the inversion's own history.
    """

    name: ClassVar[str] = "deis"
    order: ClassVar[int] = 3
    max_order: int = Field(3, ge=1, le=4, description="Points of the interpolating polynomial.")

    def weights(self, nodes: list[float], here: Step) -> list[float]:
        return lagrange_weights(nodes, here.src.tau, here.dst.tau, warp=vp_time)
