"""Self-recurrence written against the zsampling 0.1.0 docs, unchanged: the import paths
``zsampling.path``, ``zsampling.errors`` and ``zsampling.samplers.base`` have moved since, and
must keep working (with a DeprecationWarning) for at least one minor version."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from zsampling.errors import InvalidArgument
from zsampling.path import SamplingPath
from zsampling.plugins import hookimpl
from zsampling.samplers.base import check_reflection_steps


class LegacyRecurrence(BaseModel):
    """Denoise, re-noise back with fresh noise, repeat; then move on (Universal Guidance)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: ClassVar[str] = "legacy-recurrence"

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
def zsampling_register_samplers(register):  # type: ignore[no-untyped-def]
    register(LegacyRecurrence)
