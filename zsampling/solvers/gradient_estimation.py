"""The gradient-estimation sampler (Permenter & Yuan 2024, "Interpreting and Improving Diffusion
Models from an Optimization Perspective"; ComfyUI's ``gradient_estimation``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from torch import Tensor

from zsampling.solvers.family import Step
from zsampling.solvers.frame import FrameSolver, slope


class GradientEstimation(FrameSolver):
    """Euler with the derivative extrapolated from the previous one of the same direction:
    ``d + (gamma - 1)(d - d_prev)`` (the paper's gradient estimate; ``gamma = 1`` is Euler, 2 the
    paper's choice). Its local error is still O(h^2) on a general ODE: first order, as measured
    in docs/solvers.md; what the paper improves is the error along denoising trajectories.

    The first step of a path, an isolated zag and the step into sigma 0 are Euler. Inverts with
    the same formula on its own history.
    """

    name: ClassVar[str] = "gradient-estimation"
    order: ClassVar[int] = 1
    gamma: float = Field(2.0, ge=1.0, le=3.0, description="Weight of the newest derivative.")

    def falls_back(self, here: Step) -> bool:
        return here.history is None or here.dst.tau == 0.0

    def advance(self, here: Step) -> Tensor:
        before = here.history
        assert before is not None  # falls_back took the step without history
        d = slope(here.pred, here.src)
        estimate = d + (self.gamma - 1.0) * (d - slope(before.prediction, before.point))
        return here.land(here.y + estimate * (here.dst.tau - here.src.tau))
