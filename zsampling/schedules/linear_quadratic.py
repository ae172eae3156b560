"""The ``linear-quadratic`` schedule (Genmo's Mochi; ComfyUI's ``linear_quadratic``).

On a ``[0, 1]`` noise scale: the first ``linear_steps`` steps take the noise down linearly by
``threshold_noise`` in all, the rest follow the quadratic that continues that line smoothly and
reaches 0 at the last step. The result is scaled by the model's largest sigma (in its sigma space:
for flow models that is ``t = 1``, pure noise).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.errors import InvalidArgument
from zsampling.core.model import ModelAdapter
from zsampling.core.schedule import MAX_STEPS
from zsampling.schedules.space import sigma_space


def linear_quadratic_noise(steps: int, threshold: float, linear_steps: int) -> list[float]:
    """The ``steps`` noise fractions (from 1 down, the final 0 left out)."""
    if steps == 1:
        return [1.0]
    quadratic_steps = steps - linear_steps
    gap = linear_steps - threshold * steps
    a = gap / (linear_steps * quadratic_steps**2)
    b = threshold / linear_steps - 2 * gap / quadratic_steps**2
    c = a * linear_steps**2
    done = [i * threshold / linear_steps for i in range(linear_steps)]
    done += [a * i * i + b * i + c for i in range(linear_steps, steps)]
    return [1.0 - d for d in done]


class LinearQuadratic(Component):
    """Linear then quadratic descent of the noise (Mochi's schedule)."""

    name: ClassVar[str] = "linear-quadratic"

    steps: int = Field(25, ge=1, le=MAX_STEPS, description="Number of denoising steps T.")
    threshold_noise: float = Field(
        0.025, gt=0, lt=1, description="Noise fraction removed by the linear part."
    )
    linear_steps: int | None = Field(
        None, ge=1, description="Steps of the linear part; default: half the steps."
    )

    def sigmas(self, model: ModelAdapter) -> Tensor:
        linear = self.linear_steps if self.linear_steps is not None else self.steps // 2
        if self.steps > 1 and linear >= self.steps:
            raise InvalidArgument(
                "schedule.linear_steps", linear, f"fewer than the steps ({self.steps})"
            )
        space = sigma_space(model)
        noise = linear_quadratic_noise(self.steps, self.threshold_noise, linear)
        return space.levels(torch.tensor(noise, dtype=torch.float64) * space.sigma_max)
