"""The shape every solver family here shares: a step is either the family's first-order fallback
(at sigma 0, at pure noise, without history, ...) or the method's own update.

`Family.step` is the one place that takes the six arguments of the `StepContext` solver contract
(`zsampling.core.solvers`): it bundles them into a `Step`, asks the subclass whether this step
`falls_back`, and hands the `Step` to `fallback` or `advance`. The family bases say what the
fallback is: Euler in the ODE frame (`zsampling.solvers.frame.FrameSolver`) or DDIM on native
latents (`zsampling.solvers.stochastic.Stochastic`), so a method states only its own update and
when it cannot make it.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.prediction import Prediction
from zsampling.core.solvers import History, LevelPoint, StepContext, from_frame, to_frame


class Step(NamedTuple):
    """One step's arguments in one piece (a named tuple: cheap to make once per step)."""

    x: Tensor
    pred: Prediction
    src: LevelPoint
    dst: LevelPoint
    history: History | None
    ctx: StepContext

    @property
    def y(self) -> Tensor:
        """The latent in the source level's ODE frame, in float64."""
        return to_frame(self.x, self.src)

    @property
    def x0(self) -> Tensor:
        """The prediction's ``x0`` in float64."""
        return self.pred.x0.to(torch.float64)

    def land(self, y: Tensor) -> Tensor:
        """A frame latent at ``dst`` back in native space and the caller's dtype."""
        return from_frame(y, self.dst, self.x.dtype)


class Family(Component):
    """A solver made of a first-order fallback and its own update (a base class, not a
    registered solver): subclasses give `falls_back`, `fallback` and `advance`."""

    def falls_back(self, here: Step) -> bool:
        """Whether this step is the family's first-order fallback instead of the method."""
        raise NotImplementedError

    def fallback(self, here: Step) -> Tensor:
        """The family's first-order step."""
        raise NotImplementedError

    def advance(self, here: Step) -> Tensor:
        """The method's own step, in the caller's dtype."""
        raise NotImplementedError

    def step(
        self,
        x: Tensor,
        pred: Prediction,
        src: LevelPoint,
        dst: LevelPoint,
        history: History | None,
        ctx: StepContext,
    ) -> Tensor:
        here = Step(x, pred, src, dst, history, ctx)
        return self.fallback(here) if self.falls_back(here) else self.advance(here)
