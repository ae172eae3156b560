"""Implicit Z-Sampling (Li et al., "Z²-Sampling", arXiv 2604.23536): the zig-zag as one move."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.path import SamplingPath
from zsampling.core.sampler import check_reflection_steps
from zsampling.samplers.implicit import guided_gap, implicit_zag


class ImplicitZigzag(Component):
    """Z-Sampling with the zag done algebraically: move the latent along the guidance gap, then
    denoise.

    On each of the first ``zigzag_steps`` steps: one evaluation of ``x`` at ``t_i`` gives the
    gap ``eps_g1 - eps_g2``, the latent moves to ``x - c_i * gap`` (what a DDIM zig at ``g1``
    and zag at ``g2`` would do if the weak prediction did not change along the step; see
    `zsampling.samplers.implicit`), and that latent is denoised at ``g1`` with the solver. The
    re-denoise's evaluation yields the next round's gap, so ``rounds`` rounds cost ``rounds +
    1`` guided calls per step instead of zigzag's ``2 rounds + 1``. It is this project's reading
    of the paper's description, not its code (docs/concepts.md).
    """

    name: ClassVar[str] = "implicit-zigzag"

    guidance: float = Field(5.5, ge=0, description="gamma1: CFG scale of every denoise (zig).")
    inversion_guidance: float = Field(
        0.0, ge=0, description="gamma2: the implicit zag's CFG scale; 0 = unconditional."
    )
    zigzag_steps: int | None = Field(
        None, ge=0, description="lambda: the first steps that zigzag; default T - 1 (all but last)."
    )
    rounds: int = Field(1, ge=1, description="T_max: implicit zigzag rounds per step.")

    def check_steps(self, steps: int) -> int:
        """The number of zigzag steps for a ``steps``-step schedule, or a clear error."""
        return check_reflection_steps("sampler.zigzag_steps", self.zigzag_steps, steps)

    def sample(self, x: Tensor, path: SamplingPath) -> Tensor:
        reflecting = self.check_steps(path.steps)
        g1, g2 = self.guidance, self.inversion_guidance
        for i in range(path.steps):
            if i >= reflecting:
                x = path.denoise(x, i, g1)
                continue
            strong, gap = guided_gap(path, x, i, g1, g2)
            for _ in range(self.rounds):
                x = implicit_zag(x, path, i, gap)
                strong, gap = guided_gap(path, x, i, g1, g2)
            x = path.denoise(x, i, g1, prediction=strong)
        return x
