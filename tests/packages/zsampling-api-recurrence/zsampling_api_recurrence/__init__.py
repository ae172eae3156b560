"""Self-recurrence written against the stable API: every name from ``zsampling.api``."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from torch import Tensor

from zsampling.api import (
    Component,
    InvalidArgument,
    Register,
    SamplingPath,
    check_reflection_steps,
    hookimpl,
)


class ApiRecurrence(Component):
    """Denoise, re-noise back with fresh noise, repeat; then move on (Universal Guidance)."""

    name: ClassVar[str] = "api-recurrence"

    guidance: float = Field(5.5, ge=0, description="CFG scale of every denoise.")
    repeats: int = Field(2, ge=0, description="Re-noise/denoise repetitions per step.")
    recurrent_steps: int = Field(5, ge=0, description="How many of the first steps recur.")

    def check_steps(self, steps: int) -> None:
        if self.repeats > 10:
            raise InvalidArgument("sampler.repeats", self.repeats, "at most 10")
        check_reflection_steps("sampler.recurrent_steps", self.recurrent_steps, steps)

    def sample(self, x: Tensor, path: SamplingPath) -> Tensor:
        for i in range(path.steps):
            x_next = path.denoise(x, i, self.guidance)
            if i < min(self.recurrent_steps, path.steps - 1):
                for _ in range(self.repeats):
                    x = path.renoise(x_next, i + 1, i)
                    x_next = path.denoise(x, i, self.guidance)
            x = x_next
        return x


@hookimpl
def zsampling_register_samplers(register: Register) -> None:
    register(ApiRecurrence)
