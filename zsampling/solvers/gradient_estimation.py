"""The gradient-estimation sampler (Permenter & Yuan 2024, "Interpreting and Improving Diffusion
Models from an Optimization Perspective"; ComfyUI's ``gradient_estimation``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.prediction import Prediction
from zsampling.core.solvers import History, LevelPoint, StepContext, from_frame, to_frame
from zsampling.solvers.frame import euler, slope


class GradientEstimation(Component):
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

    def step(
        self,
        x: Tensor,
        pred: Prediction,
        src: LevelPoint,
        dst: LevelPoint,
        history: History | None,
        ctx: StepContext,
    ) -> Tensor:
        if history is None or dst.tau == 0.0:
            return euler(x, pred, src, dst)
        d = slope(pred, src)
        estimate = d + (self.gamma - 1.0) * (d - slope(history.prediction, history.point))
        return from_frame(to_frame(x, src) + estimate * (dst.tau - src.tau), dst, x.dtype)
