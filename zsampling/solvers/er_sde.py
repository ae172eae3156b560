"""ER-SDE-Solver-3 (Cui et al. 2023, "Elucidating the solution space of extended reverse-time
SDEs"; ComfyUI's ``sample_er_sde``): a first-order step of the extended reverse-time SDE whose
noise is set by the noise scaler ``phi(sigma) = sigma (e^{sigma^0.3} + 10)``, plus up to two
Taylor terms from the previous predictions in the same direction.

The step's time is the level ``sigma = s / alpha`` for every process (VP, VE, flow), so the
formula is written on native latents once. The scaler's integrals are 200-point left Riemann sums
over the step, as the paper's reference code computes them, so results match it. Its zag is DDIM:
the ER-SDE with the ODE's scaler ``phi(sigma) = sigma``, whose first stage is DDIM.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from pydantic import Field
from torch import Tensor

from zsampling.core.casts import cast
from zsampling.solvers.family import Step
from zsampling.solvers.stochastic import Stochastic, finite, fresh

POINTS = 200


def scaler(sigma: Tensor) -> Tensor:
    """The default ER-SDE noise scaler ``sigma (e^{sigma^0.3} + 10)``."""
    return sigma * ((sigma**0.3).exp() + 10)


def scaled(sigma: float) -> float:
    """`scaler` at one level."""
    return float(scaler(torch.tensor(sigma, dtype=torch.float64)))


def integrals(a: float, b: float) -> tuple[float, float]:
    """``int 1/phi`` and ``int (l - a)/phi`` over the step from ``a`` to ``b`` (left sums, from
    ``b``), each signed as the reference takes them."""
    width = (a - b) / POINTS
    at = b + torch.arange(POINTS, dtype=torch.float64) * width
    phi = scaler(at)
    return float((1 / phi).sum()) * width, float(((at - a) / phi).sum()) * width


class ERSDE(Stochastic):
    """ER-SDE-Solver-3 with ``s_noise`` and up to ``max_stage`` Taylor stages."""

    name: ClassVar[str] = "er-sde"
    order: ClassVar[int] = 3

    s_noise: float = Field(1.0, ge=0, description="Scale of the fresh noise.")
    max_stage: int = Field(3, ge=1, le=3, description="Highest stage (order) used: 1, 2 or 3.")

    def advance(self, here: Step) -> Tensor:
        ctx, x, x0, dst = here.ctx, here.x, here.x0, here.dst
        src = finite(here.src, ctx)
        a, b = src.sigma, dst.sigma
        r = scaled(b) / scaled(a)
        out = (dst.alpha / src.alpha) * r * x.to(torch.float64) + dst.alpha * (1 - r) * x0
        earlier = [finite(h.point, ctx).sigma for h in ctx.history[: self.max_stage - 1]]
        if earlier:
            s, s_u = integrals(a, b)
            dt = b - a
            slope = (x0 - ctx.history[0].x0.to(torch.float64)) / (a - earlier[0])
            out = out + dst.alpha * (dt + s * scaled(b)) * slope
            if len(earlier) == 2:
                x0_1, x0_2 = (h.x0.to(torch.float64) for h in ctx.history[:2])
                older = (x0_1 - x0_2) / (earlier[0] - earlier[1])
                curve = (slope - older) / ((a - earlier[1]) / 2)
                out = out + dst.alpha * (dt * dt / 2 + s_u * scaled(b)) * curve
        if self.s_noise > 0:
            spread = math.sqrt(max(b * b - a * a * r * r, 0.0))
            out = out + fresh(ctx, x) * (dst.alpha * self.s_noise * spread)
        return cast(out, x.dtype)
