"""Implicit Z-Sampling (Li et al., "Z²-Sampling", arXiv 2604.23536): the zig-zag as one move."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from torch import Tensor

from zsampling.core.path import SamplingPath
from zsampling.samplers.implicit import ImplicitSettings, guided_gap, implicit_zag


class ImplicitZigzag(ImplicitSettings):
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

    rounds: int = Field(1, ge=1, description="T_max: implicit zigzag rounds per step.")

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
