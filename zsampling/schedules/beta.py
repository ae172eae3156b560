"""The ``beta`` schedule (Lee et al., 2024, "Beta Sampling is All You Need"; ComfyUI's ``beta``).

Step ``i`` of ``T`` sits at the training timestep ``round(F^-1(1 - i / T) * (n - 1))`` of the
model's ``n``-level ladder, where ``F`` is the CDF of a Beta(alpha, beta) distribution: with
alpha = beta = 0.6 the steps crowd at both ends of the trajectory, where the paper measures the
most change. The inverse CDF is computed here (Newton's method inside a bisection bracket on the
regularised incomplete beta function's continued fraction) rather than with scipy, which is not a
core dependency; it agrees with ``scipy.stats.beta.ppf`` to 1e-12 (tested).

ComfyUI drops a step that rounds to the same timestep as the one before, running fewer steps than
asked; here such a step count is refused instead, naming the most this model allows.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import ClassVar

from pydantic import Field
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.errors import InvalidArgument
from zsampling.core.model import ModelAdapter
from zsampling.core.schedule import MAX_STEPS
from zsampling.schedules.space import sigma_space

_TINY = 1e-300


def _continued_fraction(x: float, a: float, b: float) -> float:
    """The continued fraction of ``I_x(a, b)`` (modified Lentz), converging for
    ``x < (a + 1) / (a + b + 2)``."""
    f, c, d = 1.0, 1.0, 0.0
    for i in range(400):
        m = i // 2
        if i == 0:
            term = 1.0
        elif i % 2 == 0:
            term = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            term = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + term * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + term / c
        c = c if abs(c) > _TINY else _TINY
        f *= c * d
        if abs(1.0 - c * d) < 1e-16:
            break
    return f - 1.0


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def beta_cdf(x: float, a: float, b: float) -> float:
    """The regularised incomplete beta function ``I_x(a, b)``: the Beta(a, b) CDF at ``x``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1) / (a + b + 2):
        return 1.0 - beta_cdf(1.0 - x, b, a)
    front = math.exp(a * math.log(x) + b * math.log1p(-x) - _log_beta(a, b)) / a
    return front * _continued_fraction(x, a, b)


@lru_cache(maxsize=4096)
def beta_ppf(q: float, a: float, b: float) -> float:
    """The Beta(a, b) quantile of ``q``: Newton's method, kept inside a shrinking bracket."""
    if q <= 0.0 or q >= 1.0:
        return min(max(q, 0.0), 1.0)
    lo, hi, x = 0.0, 1.0, 0.5
    for _ in range(200):
        err = beta_cdf(x, a, b) - q
        if err > 0:
            hi = x
        else:
            lo = x
        log_pdf = (a - 1) * math.log(x) + (b - 1) * math.log1p(-x) - _log_beta(a, b)
        step = x - err / math.exp(log_pdf)
        x_next = step if lo < step < hi else (lo + hi) / 2
        if abs(x_next - x) <= 1e-15 * max(x, 1e-300) or hi - lo <= 1e-16:
            return x_next
        x = x_next
    return x


class Beta(Component):
    """Training timesteps at the quantiles of a Beta(alpha, beta) distribution (Lee et al.)."""

    name: ClassVar[str] = "beta"

    steps: int = Field(25, ge=1, le=MAX_STEPS, description="Number of denoising steps T.")
    alpha: float = Field(0.6, gt=0, description="Beta distribution's alpha (the noisy end).")
    beta: float = Field(0.6, gt=0, description="Beta distribution's beta (the clean end).")

    def sigmas(self, model: ModelAdapter) -> Tensor:
        space = sigma_space(model)
        ladder = space.need_ladder(self.name)
        top = len(ladder.sigmas) - 1
        quantiles = [1.0 - i / self.steps for i in range(self.steps)]
        indices = [round(beta_ppf(q, self.alpha, self.beta) * top) for q in quantiles]
        if len(set(indices)) < self.steps:
            raise InvalidArgument(
                "schedule.steps",
                self.steps,
                f"fewer steps: with alpha {self.alpha} and beta {self.beta}, {self.steps} steps "
                f"round to only {len(set(indices))} distinct training timesteps of this model",
            )
        return space.levels(ladder.sigmas[indices])
