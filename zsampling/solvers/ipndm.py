"""Improved PNDM (Zhang & Chen 2023, "Fast Sampling of Diffusion Models with Exponential
Integrator"): Adams-Bashforth with the constant-step coefficients, ComfyUI's ``ipndm``."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from zsampling.solvers.family import Step
from zsampling.solvers.frame import Adams

ADAMS_BASHFORTH: tuple[tuple[float, ...], ...] = (
    (1.0,),
    (3 / 2, -1 / 2),
    (23 / 12, -16 / 12, 5 / 12),
    (55 / 24, -59 / 24, 37 / 24, -9 / 24),
)
"""The explicit Adams-Bashforth weights of orders 1 to 4 for equal steps, newest point first."""


class IPNDM(Adams):
    """The derivatives at this level and the previous ``max_order - 1`` of the same direction,
    weighted as if the steps were equal (the method's defining simplification: cheap, and exact
    for polynomials only on uniform grids in frame time).

    Warm-up with lower orders at the start of a path and after a turn (an isolated zag is Euler);
    a step into sigma 0 is Euler. The same formula inverts on the inversion's own history.
    """

    name: ClassVar[str] = "ipndm"
    order: ClassVar[int] = 4
    max_order: int = Field(4, ge=1, le=4, description="Highest Adams-Bashforth order used.")

    def weights(self, nodes: list[float], here: Step) -> list[float]:
        dt = here.dst.tau - here.src.tau
        return [dt * w for w in ADAMS_BASHFORTH[len(nodes) - 1]]
