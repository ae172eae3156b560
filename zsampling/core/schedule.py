"""The `Schedule` protocol: which levels a run walks, for a given model."""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

from torch import Tensor

from zsampling.core.model import ModelAdapter

#: The most steps a built-in schedule takes: far past any use (a 1000-timestep model has at most
#: 1000 distinct levels), low enough that a typo (``steps = 1e9``) is refused in the config instead
#: of exhausting memory when the levels are made.
MAX_STEPS = 10_000


@runtime_checkable
class Schedule(Protocol):
    """``[schedule]``: ``sigmas(model)`` gives ``steps + 1`` strictly decreasing float64 levels.

    The first level is the noisiest (``inf`` allowed for flow models' pure noise); the last is
    where sampling ends (0, or a model's smallest level). A schedule may also offer
    ``noise_scale(model)``, the starting-noise factor in the model's space, when it differs from
    the process's (see `zsampling.core.sampling.sample`).
    """

    name: ClassVar[str]

    @property
    def steps(self) -> int: ...

    def sigmas(self, model: ModelAdapter) -> Tensor: ...
