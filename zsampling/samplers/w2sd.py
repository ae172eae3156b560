"""W2SD: Weak-to-Strong Diffusion with reflection (Bai et al., 2025)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.errors import InvalidArgument
from zsampling.core.path import InversionPoint, SamplingPath
from zsampling.core.sampler import check_reflection_steps
from zsampling.samplers.reflection import reflect


class W2SD(Component):
    """Invert with a weak model, denoise with the strong one.

    The weak-to-strong gap (for example base weights vs Diffusion-DPO weights, or a model without
    its LoRA) plays the role Z-Sampling gives the guidance gap; Z-Sampling is the special case where
    both are the same model at different guidance scales. The weak model is a second model of the
    run, named by ``weak_model``.
    """

    name: ClassVar[str] = "w2sd"
    scales: ClassVar[tuple[str, ...]] = ("guidance", "weak_guidance")

    guidance: float = Field(5.5, ge=0, description="CFG scale of the strong model's denoise.")
    weak_guidance: float | None = Field(
        None, ge=0, description="CFG scale of the weak model's inversion; default: `guidance`."
    )
    weak_model: str = Field("weak", description="Name of the run's weak model.")
    reflection_steps: int | None = Field(
        None, ge=0, description="The first steps that reflect; default T - 1."
    )
    rounds: int = Field(1, ge=1, description="Reflection rounds per step.")
    inversion: InversionPoint = Field("source", description="official | target | source.")

    def sample(self, x: Tensor, path: SamplingPath) -> Tensor:
        if self.weak_model not in path.guiders:
            others = sorted(k for k in path.guiders if k != "main")
            raise InvalidArgument(
                "sampler.weak_model",
                self.weak_model,
                f"the name of a second model of the run (configured: {others or 'none'})",
            )
        weak = self.guidance if self.weak_guidance is None else self.weak_guidance
        return reflect(
            x,
            path,
            guidance=self.guidance,
            inversion_guidance=weak,
            reflection_steps=check_reflection_steps(
                "sampler.reflection_steps", self.reflection_steps, path.steps
            ),
            rounds=self.rounds,
            evaluate_at=self.inversion,
            inversion_model=self.weak_model,
        )
