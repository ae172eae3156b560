"""Linear multistep (Adams-Bashforth on variable steps; k-diffusion ``sample_lms``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from zsampling.solvers.family import Step
from zsampling.solvers.frame import Adams, lagrange_weights


class LMS(Adams):
    """The frame derivative at this level and the ``order - 1`` previous ones of the same
    direction, interpolated by a polynomial in frame time and integrated exactly over the step.

    Fewer points at the start of a path (and after a turn: an isolated zag is Euler, as
    ``dpmpp-2m``'s is DDIM). A step into sigma 0 is Euler, i.e. the prediction's ``x0``, as in
    ComfyUI; ``final_step="polynomial"`` integrates the polynomial down to 0 instead, as
    k-diffusion 0.1 does. Upwards it is the same formula on the inversion's own history, of the
    same order.
    """

    name: ClassVar[str] = "lms"
    order: ClassVar[int] = 4
    max_order: int = Field(4, ge=1, le=6, description="Points of the interpolating polynomial.")
    final_step: Literal["x0", "polynomial"] = Field(
        "x0", description="Into sigma 0: x0 (as ComfyUI) or the polynomial (as k-diffusion 0.1)."
    )

    def points(self, here: Step) -> int:
        if here.dst.tau == 0.0 and self.final_step == "x0":
            return 1
        return min(self.max_order, 1 + len(here.ctx.history))

    def weights(self, nodes: list[float], here: Step) -> list[float]:
        return lagrange_weights(nodes, here.src.tau, here.dst.tau)
