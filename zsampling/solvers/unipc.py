"""UniPC (Zhao et al. 2023): the multistep predictor UniP and the corrector UniC, data
prediction, in log-SNR ``lambda = log(alpha / s)`` and native latents (diffusers'
``UniPCMultistepScheduler``, ``predict_x0=True``)."""

from __future__ import annotations

import itertools
import math
from typing import ClassVar, Literal, NamedTuple

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from zsampling.core.casts import cast
from zsampling.core.component import Component
from zsampling.core.prediction import Prediction
from zsampling.core.solvers import History, LevelPoint, StepContext


class _Corrected(NamedTuple):
    """What a step leaves for the next one's corrector: its (corrected) source latent and the
    order its predictor used."""

    x: Tensor
    order: int


class _Coefficients(NamedTuple):
    h_phi_1: float
    b_h: float
    ratios: list[float]
    b: list[float]


def _coefficients(
    src: LevelPoint, dst: LevelPoint, older: list[LevelPoint], variant: str
) -> _Coefficients:
    """The B(h)-variant's ``h phi_1``, ``B(h)``, the step-ratio ``r_k`` of each older level and
    the right-hand side ``b`` of the order conditions (the paper's Algorithm 1/2)."""
    h = dst.lam - src.lam
    hh = -h
    h_phi_1 = math.expm1(hh)
    b_h = hh if variant == "bh1" else h_phi_1
    h_phi_k, factorial = h_phi_1 / hh - 1.0, 1.0
    b = []
    for i in range(1, len(older) + 2):
        b.append(h_phi_k * factorial / b_h)
        factorial *= i + 1
        h_phi_k = h_phi_k / hh - 1.0 / factorial
    ratios = [(p.lam - src.lam) / h for p in older]
    return _Coefficients(h_phi_1, b_h, ratios, b)


def _rhos(ratios: list[float], b: list[float], corrector: bool) -> list[float]:
    """Solve the Vandermonde order conditions (``R rho = b``) for the corrector, or the
    predictor's system without the newest column."""
    size = len(ratios) + (1 if corrector else 0)
    if size == 1:
        return [0.5]
    nodes = np.array([*ratios, 1.0][:size])
    return np.linalg.solve(np.vander(nodes, size, increasing=True).T, np.array(b[:size])).tolist()


def _update(
    x: Tensor,
    m0: Tensor,
    src: LevelPoint,
    dst: LevelPoint,
    older: list[History],
    variant: str,
    newest: Tensor | None,
) -> Tensor:
    """``x`` at ``src`` to ``dst``: UniP from ``m0`` and the ``older`` predictions, or UniC when
    ``newest`` (the prediction at ``dst``) is given. Float64 in and out."""
    c = _coefficients(src, dst, [h.point for h in older], variant)
    first = (dst.s / src.s) * x - (dst.alpha * c.h_phi_1) * m0
    diffs = [(h.x0.to(torch.float64) - m0) / r for h, r in zip(older, c.ratios, strict=True)]
    if newest is not None:
        diffs.append(newest - m0)
    elif not diffs:
        return first
    rhos = _rhos(c.ratios, c.b, corrector=newest is not None)
    res = sum((rho * d for rho, d in zip(rhos, diffs, strict=False)), torch.zeros_like(x))
    return first - (dst.alpha * c.b_h) * res


class UniPC(Component):
    """UniPC with the B(h) of ``variant`` (``bh1``: ``B(h) = h``; ``bh2``: ``e^h - 1``).

    Each step first corrects its source latent with UniC, using the prediction just made there
    (no extra model call: the correction is not re-evaluated), then predicts with UniP of order
    ``min(max_order, 1 + history, steps left)`` (the lower orders at the end are diffusers'
    ``lower_order_final``). The path's latents between steps are the predictor's; the final
    latent is uncorrected, as in diffusers.

    History is per direction: an isolated zag has none and is DDIM, uncorrected; a full inversion
    is the same predictor-corrector upwards. Steps with an infinite log-SNR (sigma 0, a flow
    model's pure noise) are DDIM and are not corrected across.
    """

    name: ClassVar[str] = "unipc"
    order: ClassVar[int] = 2
    max_order: int = Field(2, ge=1, le=3, description="Predictor order (diffusers' solver_order).")
    variant: Literal["bh1", "bh2"] = Field("bh2", description="B(h): bh1 = h, bh2 = e^h - 1.")
    corrector: bool = Field(True, description="Apply UniC (False: the bare UniP predictor).")

    def step(
        self,
        x: Tensor,
        pred: Prediction,
        src: LevelPoint,
        dst: LevelPoint,
        history: History | None,
        ctx: StepContext,
    ) -> Tensor:
        x64, m0 = x.to(torch.float64), pred.x0.to(torch.float64)
        chain = list(itertools.takewhile(lambda h: math.isfinite(h.point.lam), ctx.history))
        corrected = self.corrector and chain and isinstance(chain[0].state, _Corrected)
        if corrected and math.isfinite(src.lam):
            before, previous = chain[0], chain[0].state
            m_before = before.x0.to(torch.float64)
            older = chain[1 : previous.order]
            x64 = _update(previous.x, m_before, before.point, src, older, self.variant, m0)
        left = ctx.steps - ctx.index if ctx.direction == "denoise" else ctx.index
        order = min(self.max_order, 1 + len(chain), left)
        if not (math.isfinite(src.lam) and math.isfinite(dst.lam)):
            order = 1
        ctx.remember(_Corrected(x64, order))
        if src.s == 0.0:  # inverting from sigma 0: nothing was corrected, DDIM from eps
            return cast(pred.step_to(dst.alpha, dst.s), x.dtype)
        if order == 1:
            return cast(dst.alpha * m0 + dst.s * (x64 - src.alpha * m0) / src.s, x.dtype)
        return cast(_update(x64, m0, src, dst, chain[: order - 1], self.variant, None), x.dtype)
