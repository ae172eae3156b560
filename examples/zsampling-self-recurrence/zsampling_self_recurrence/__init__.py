"""Self-recurrence (Bansal et al., "Universal Guidance", 2023) as a zsampling sampler plugin.

At each of the first ``recurrent_steps`` steps the sampler denoises one level, then puts fresh
forward noise back to return to the level it came from, and repeats that ``repeats`` times before
moving on. Unlike Z-Sampling's deterministic inversion, the way back is stochastic: the guidance
of the denoise is kept, the error of the step is re-drawn.

It is written against zsampling's public protocol only: a pydantic model with a ``name`` and a
``sample(x, path)`` method, registered through the ``zsampling_register_samplers`` hook.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from zsampling.api import SamplingPath, hookimpl


class SelfRecurrence(BaseModel):
    """Denoise, re-noise back with fresh noise, repeat; then move on (Universal Guidance)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: ClassVar[str] = "self-recurrence"
    scales: ClassVar[tuple[str, ...]] = ("guidance",)  # its guidance scale settings, main first

    guidance: float = Field(5.5, ge=0, description="CFG scale of every denoise.")
    repeats: int = Field(2, ge=0, description="Re-noise/denoise repetitions per step.")
    recurrent_steps: int = Field(5, ge=0, description="How many of the first steps recur.")

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
    register(SelfRecurrence)
