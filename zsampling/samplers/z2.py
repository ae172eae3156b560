"""Z²-Sampling (Li et al., arXiv 2604.23536): implicit Z-Sampling with a cached gap."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field
from torch import Tensor

from zsampling.core.path import SamplingPath
from zsampling.samplers.implicit import ImplicitSettings, guided_gap, implicit_zag


class Z2(ImplicitSettings):
    """Implicit Z-Sampling whose guidance gap is the previous step's: standard sampling's cost.

    Every denoise evaluates both branches anyway; the gap ``eps_g1 - eps_g2`` they give at step
    ``i - 1`` (at the latent that step denoised) stands in for the current step's (the
    "temporal semantic surrogate"), so the implicit zag ``x - c_i * gap`` needs no evaluation of
    its own and a step costs one guided call (two branch rows), like standard CFG. The first
    step has no previous gap: ``first_step = "plain"`` denoises it without a zag (exactly one
    guided call per step); ``"implicit"`` pays one extra call there for its own gap. The
    surrogate is refreshed at every step from that step's own evaluation. This is the project's
    reading of the paper's description, not its code (docs/concepts.md).
    """

    name: ClassVar[str] = "z2"

    first_step: Literal["plain", "implicit"] = Field(
        "plain",
        description="Step 0, which has no cached gap: plain (no zag, no extra cost) or implicit "
        "(one extra guided call for its own gap).",
    )

    def sample(self, x: Tensor, path: SamplingPath) -> Tensor:
        reflecting = self.check_steps(path.steps)
        g1, g2 = self.guidance, self.inversion_guidance
        gap: Tensor | None = None
        for i in range(path.steps):
            if i >= reflecting:
                x = path.denoise(x, i, g1)
                continue
            if gap is None and self.first_step == "implicit":
                _, gap = guided_gap(path, x, i, g1, g2)
            if gap is not None:
                x = implicit_zag(x, path, i, gap)
            strong, gap = guided_gap(path, x, i, g1, g2)
            x = path.denoise(x, i, g1, prediction=strong)
        return x
