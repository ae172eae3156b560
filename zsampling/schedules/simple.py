"""The ``simple`` and ``ddim-uniform`` schedules: every k-th level of the model's training ladder.

Both pick levels of the ladder itself (`zsampling.schedules.space`), noisiest first, then 0:

- ``simple`` (ComfyUI's ``simple``): ladder index ``n - 1 - floor(i n / steps)`` for step ``i``,
  so it starts at the model's largest level;
- ``ddim-uniform`` (ComfyUI's ``ddim_uniform``): indices ``1, 1 + k, 1 + 2k, ...`` with
  ``k = n // steps``, walked from the top. ComfyUI keeps going while the index is on the ladder,
  so for step counts that do not divide it (7 on 1,000 timesteps) it runs more steps than asked;
  here the schedule has exactly ``steps`` steps, the first ``steps`` of ComfyUI's.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.errors import InvalidArgument
from zsampling.core.model import ModelAdapter
from zsampling.core.schedule import MAX_STEPS
from zsampling.schedules.space import sigma_space


def ladder_levels(model: ModelAdapter, name: str, steps: int, indices: list[int]) -> Tensor:
    """The levels at ladder ``indices`` (noisiest first), then 0; refuses indices off the
    ladder or repeated (more steps than the model has distinct training levels)."""
    space = sigma_space(model)
    ladder = space.need_ladder(name)
    n = len(ladder.sigmas)
    if len(set(indices)) < steps or max(indices) >= n:
        raise InvalidArgument(
            "schedule.steps",
            steps,
            f"fewer steps: '{name}' picks distinct levels of this model's {n} training levels",
        )
    return space.levels(ladder.sigmas[indices])


class Simple(Component):
    """Evenly strided levels of the training ladder, from the largest (ComfyUI's ``simple``)."""

    name: ClassVar[str] = "simple"

    steps: int = Field(25, ge=1, le=MAX_STEPS, description="Number of denoising steps T.")

    def sigmas(self, model: ModelAdapter) -> Tensor:
        n = len(sigma_space(model).need_ladder(self.name).sigmas)
        stride = n / self.steps
        indices = [n - 1 - int(i * stride) for i in range(self.steps)]
        return ladder_levels(model, self.name, self.steps, indices)


class DDIMUniform(Component):
    """Every ``n // steps``-th training level from index 1 up (ComfyUI's ``ddim_uniform``)."""

    name: ClassVar[str] = "ddim-uniform"

    steps: int = Field(25, ge=1, le=MAX_STEPS, description="Number of denoising steps T.")

    def sigmas(self, model: ModelAdapter) -> Tensor:
        n = len(sigma_space(model).need_ladder(self.name).sigmas)
        stride = max(n // self.steps, 1)
        indices = [1 + i * stride for i in reversed(range(self.steps))]
        return ladder_levels(model, self.name, self.steps, indices)
