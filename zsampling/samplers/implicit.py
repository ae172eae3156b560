"""The implicit zag: a first-order zig-zag collapsed into one move of the latent.

With a first-order step (DDIM) between levels ``i`` and ``i + 1`` (``sigma = s / alpha``), a zig
at scale ``g1`` from ``x`` and a zag at ``g2`` back from the result land at

    x' = x - c_i * (eps_g1(x, t_i) - eps_g2(x_next, t_{i+1})),
    c_i = alpha_i (sigma_i - sigma_{i+1})

(the DDIM steps' ``x / alpha`` parts cancel exactly). Reading both predictions at ``(x, t_i)``
instead makes the move ``x - c_i * gap`` with the guidance gap ``gap = eps_g1 - eps_g2`` (for
CFG, ``(g1 - g2) (eps_cond - eps_uncond)``) of one evaluation: the implicit zag. It differs from
the explicit zag by exactly ``c_i * (eps_g2(x_next, t_{i+1}) - eps_g2(x, t_i))``, the change of
the weak prediction along the step (docs/concepts.md).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.path import SamplingPath
from zsampling.core.prediction import Prediction
from zsampling.core.sampler import check_reflection_steps


class ImplicitSettings(Component):
    """The settings `ImplicitZigzag` and `Z2` share (zigzag's scales and steps)."""

    scales: ClassVar[tuple[str, ...]] = ("guidance", "inversion_guidance")

    guidance: float = Field(5.5, ge=0, description="gamma1: CFG scale of every denoise (zig).")
    inversion_guidance: float = Field(
        0.0, ge=0, description="gamma2: the implicit zag's CFG scale; 0 = unconditional."
    )
    zigzag_steps: int | None = Field(
        None, ge=0, description="lambda: the first steps that zigzag; default T - 1 (all but last)."
    )

    def check_steps(self, steps: int) -> int:
        """The number of zigzag steps for a ``steps``-step schedule, or a clear error."""
        return check_reflection_steps("sampler.zigzag_steps", self.zigzag_steps, steps)


def gap_coefficient(path: SamplingPath, i: int) -> float:
    """``c_i = alpha_i (sigma_i - sigma_{i+1}) = s_i - alpha_i s_{i+1} / alpha_{i+1}`` (the second
    form is finite at a flow model's pure-noise level, where ``sigma_i`` is not)."""
    src, dst = path.point(i), path.point(i + 1)
    return src.s - src.alpha * dst.s / dst.alpha


def implicit_zag(x: Tensor, path: SamplingPath, i: int, gap: Tensor) -> Tensor:
    """``x - c_i * gap`` (in float64, returned in ``x``'s dtype): the zig-zag at step ``i``."""
    return torch.sub(x.to(torch.float64), gap, alpha=gap_coefficient(path, i)).to(x.dtype)


def guided_gap(
    path: SamplingPath, x: Tensor, i: int, strong: float, weak: float
) -> tuple[Prediction, Tensor]:
    """The prediction at ``strong`` of ``x`` at level ``i`` (to denoise with) and the guidance gap
    ``eps_strong - eps_weak`` in float64, both from one evaluation of the guider's branches."""
    made, other = path.predict_scales(x, i, (strong, weak))
    return made, made.eps.to(torch.float64) - other.eps.to(torch.float64)
