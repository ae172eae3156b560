"""Restart sampling (Xu et al., NeurIPS 2023): re-noise over an interval, denoise it again."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.errors import InvalidArgument
from zsampling.core.path import SamplingPath


class Restart(Component):
    """Deterministic steps, plus ``rounds`` restarts of the interval [restart_min, restart_max].

    When the path reaches the first level at or below ``restart_min``, it jumps back with fresh
    forward noise to the schedule level nearest ``restart_max`` and denoises that stretch again, so
    the accumulated error of the ODE steps is contracted by the added noise. Levels are sigmas.
    """

    name: ClassVar[str] = "restart"
    scales: ClassVar[tuple[str, ...]] = ("guidance",)

    guidance: float = Field(5.5, ge=0, description="Classifier-free guidance scale.")
    restart_min: float = Field(0.1, gt=0, description="Lower end (sigma) of the restart interval.")
    restart_max: float = Field(2.0, gt=0, description="Upper end (sigma) of the restart interval.")
    rounds: int = Field(2, ge=0, description="K: how many times the interval is restarted.")

    @model_validator(mode="after")
    def _ordered(self) -> Restart:
        if self.restart_max <= self.restart_min:
            raise ValueError(
                f"restart_max ({self.restart_max}) must be greater than restart_min "
                f"({self.restart_min})"
            )
        return self

    def interval(self, sigmas: list[float]) -> tuple[int, int]:
        """Schedule indices ``(high, low)``: restart jumps from level ``low`` back to ``high``."""
        low = next((i for i, s in enumerate(sigmas) if s <= self.restart_min), None)
        if low is None or low == 0:
            raise InvalidArgument(
                "sampler.restart_min",
                self.restart_min,
                f"a sigma inside the schedule's range ({sigmas[-1]:.4g}, {sigmas[0]:.4g}]",
            )
        high = min(range(low), key=lambda i: abs(sigmas[i] - self.restart_max))
        return high, low

    def sample(self, x: Tensor, path: SamplingPath) -> Tensor:
        high, low = self.interval([path.point(i).sigma for i in range(path.steps + 1)])
        for i in range(path.steps):
            x = path.denoise(x, i, self.guidance)
            if i + 1 == low:
                for _ in range(self.rounds):
                    x = path.renoise(x, low, high)
                    for j in range(high, low):
                        x = path.denoise(x, j, self.guidance)
        return x
