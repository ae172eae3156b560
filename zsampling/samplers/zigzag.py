"""Z-Sampling (Zigzag Diffusion Sampling, Bai et al., ICLR 2025)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.path import InversionPoint, SamplingPath
from zsampling.core.sampler import check_reflection_steps
from zsampling.samplers.reflection import reflect


class Zigzag(Component):
    """Denoise with a strong guidance, invert with a weak one, denoise again.

    The guidance gap (``guidance - inversion_guidance``) pushes prompt semantics into the latent at
    each of the first ``zigzag_steps`` steps. ``inversion`` chooses where the zag evaluates the
    model: ``source`` (default: textbook DDIM inversion, the model evaluated where the latent
    sits; it measured best on both testbeds, see docs/concepts.md), ``target`` (the released
    code's intent: model at ``t_i``) or ``official`` (bit-faithful to the released code,
    including its one-level offset).
    """

    name: ClassVar[str] = "zigzag"
    scales: ClassVar[tuple[str, ...]] = ("guidance", "inversion_guidance")

    guidance: float = Field(5.5, ge=0, description="gamma1: CFG scale of every denoise (zig).")
    inversion_guidance: float = Field(
        0.0, ge=0, description="gamma2: CFG scale of the inversion (zag); 0 = unconditional."
    )
    zigzag_steps: int | None = Field(
        None, ge=0, description="lambda: the first steps that zigzag; default T - 1 (all but last)."
    )
    rounds: int = Field(1, ge=1, description="T_max: zigzag rounds per step.")
    inversion: InversionPoint = Field(
        "source", description="Where the zag evaluates the model: official | target | source."
    )

    def check_steps(self, steps: int) -> int:
        """The number of zigzag steps for a ``steps``-step schedule, or a clear error."""
        return check_reflection_steps("sampler.zigzag_steps", self.zigzag_steps, steps)

    def sample(self, x: Tensor, path: SamplingPath) -> Tensor:
        return reflect(
            x,
            path,
            guidance=self.guidance,
            inversion_guidance=self.inversion_guidance,
            reflection_steps=self.check_steps(path.steps),
            rounds=self.rounds,
            evaluate_at=self.inversion,
            inversion_model="main",
        )
