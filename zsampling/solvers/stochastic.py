"""What the stochastic and ancestral solvers share: how much noise a step adds, the levels they
step through, and the rule that a zag is deterministic.

Every formula here works on native latents ``x = alpha * x0 + s * eps`` or in the level's ODE
frame (`zsampling.core.solvers.LevelPoint`), so one solver serves VP, VE and flow models. The
noise always comes from ``ctx.noise`` (the run's seeded per-item generators), one draw per place
where k-diffusion and ComfyUI call their ``noise_sampler``, so that a reference given the same
draws computes the same latents.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from pydantic import Field
from torch import Tensor

from zsampling.core.solvers import LevelPoint, StepContext, ddim_step
from zsampling.solvers.family import Family, Step

OFFSET_SIGMA = 9999.0
"""The level an infinite source is taken at (flow ``t = 0.9999``): the exponential integrators
need a finite log-SNR, and ComfyUI offsets its first flow level the same way."""


class Stochastic(Family):
    """A stochastic solver on native latents (a base class, not a registered solver): DDIM is its
    fallback, by default for a `deterministic` step and for a `first_order_only` one."""

    def falls_back(self, here: Step) -> bool:
        return deterministic(here.ctx, here.dst) or first_order_only(here.src, here.dst)

    def fallback(self, here: Step) -> Tensor:
        return ddim_step(here.x, here.pred, here.dst)


class Noisy(Stochastic):
    """The two settings of the ``eta`` solvers (a base class, not a registered solver). Their zag
    is their own step with ``eta = 0``, so only a `first_order_only` step is DDIM."""

    eta: float = Field(1.0, ge=0, description="Share of the step's noise that is fresh (0 = ODE).")
    s_noise: float = Field(1.0, ge=0, description="Scale of the fresh noise.")

    @property
    def adds_noise(self) -> bool:
        """Whether a denoise draws noise at all (neither setting is 0)."""
        return self.eta > 0 and self.s_noise > 0

    def falls_back(self, here: Step) -> bool:
        return first_order_only(here.src, here.dst)

    def eta_for(self, ctx: StepContext) -> float:
        """``eta`` on a denoise, 0 on a zag."""
        return self.eta if ctx.direction == "denoise" else 0.0


class Split(NamedTuple):
    """An ancestral step in the ODE frame: move deterministically to ``down``, multiply by
    ``gain``, then add ``up`` times fresh noise (times ``s_noise``)."""

    down: float
    up: float
    gain: float


def sigma_split(a: float, b: float, eta: float) -> tuple[float, float]:
    """k-diffusion's ancestral split of a step from level ``a`` to ``b``: ``(down, up)`` with
    ``down^2 + up^2 = b^2`` and ``up = eta * b * sqrt(1 - b^2 / a^2)`` (capped at ``b``)."""
    if eta == 0 or b == 0:
        return b, 0.0
    up = min(b, eta * math.sqrt(b * b * (a * a - b * b) / (a * a)))
    return math.sqrt(b * b - up * up), up


def ancestral_split(src: LevelPoint, dst: LevelPoint, eta: float) -> Split:
    """The ancestral split of a step, in the frame the reference integrates in.

    In the sigma frame (VP/VE) the variance of the step's posterior is shared out so that
    ``down^2 + up^2 = sigma_dst^2``, ``up = eta * sigma_dst * sqrt(1 - sigma_dst^2/sigma_src^2)``
    (capped at ``sigma_dst``). In the t frame of a flow model the latent shrinks as it is
    renoised: it goes down to ``t_down = t_dst (1 + (t_dst / t_src - 1) eta)``, is rescaled by
    ``(1 - t_dst) / (1 - t_down)`` and gets the noise that makes its variance that of ``t_dst``.
    """
    a, b = src.tau, dst.tau
    if eta == 0 or b == 0:
        return Split(b, 0.0, 1.0)
    if src.ode == "t":
        down = b * (1 + (b / a - 1) * eta)
        gain = (1 - b) / (1 - down)
        return Split(down, math.sqrt(max(b * b - (down * gain) ** 2, 0.0)), gain)
    return Split(*sigma_split(a, b, eta), 1.0)


def finite(point: LevelPoint, ctx: StepContext) -> LevelPoint:
    """``point``, or the `OFFSET_SIGMA` level in its place when it is pure noise (sigma inf)."""
    return ctx.point(OFFSET_SIGMA) if math.isinf(point.sigma) else point


def lam(point: LevelPoint) -> float:
    """Half log-SNR of a level, with an infinite level taken at `OFFSET_SIGMA`."""
    return -math.log(OFFSET_SIGMA) if math.isinf(point.sigma) else point.lam


def fresh(ctx: StepContext, x: Tensor) -> Tensor:
    """One draw of the run's seeded noise, in float64."""
    return ctx.noise(x).to(torch.float64)


def deterministic(ctx: StepContext, dst: LevelPoint) -> bool:
    """Whether the step adds no noise: a zag (docs/concepts.md) or a step into sigma 0."""
    return ctx.direction == "invert" or dst.sigma == 0.0


def first_order_only(src: LevelPoint, dst: LevelPoint) -> bool:
    """Whether the step is DDIM whatever the solver: it starts or ends at sigma 0 (a log-SNR
    step is infinite there; DDIM lands on ``x0`` exactly) or it climbs to pure noise."""
    return src.sigma == 0.0 or dst.sigma == 0.0 or math.isinf(dst.sigma)


def exponential_step(
    x: Tensor, x0: Tensor, src: LevelPoint, dst: LevelPoint, h: float, eta: float
) -> Tensor:
    """The first-order DPM-Solver++ SDE step in native space, without its noise:
    ``(s_dst / s_src) e^{-h eta} x + alpha_dst (1 - e^{-h (1 + eta)}) x0`` for a log-SNR step
    ``h``; with ``eta = 0`` it is DDIM."""
    return (dst.s / src.s) * math.exp(-h * eta) * x + dst.alpha * -math.expm1(-h * (1 + eta)) * x0


def sde_noise(z: Tensor, dst: LevelPoint, h: float, eta: float) -> Tensor:
    """The noise of a DPM-Solver++ SDE step, before ``s_noise``: ``s_dst sqrt(1 - e^{-2 h eta})``
    times the standard normal draw ``z``."""
    return z * (dst.s * math.sqrt(-math.expm1(-2 * h * eta)))
