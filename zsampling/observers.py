"""Per-step hooks: progress bars, previews, and trajectory recording for tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from torch import Tensor

StepKind = Literal["denoise", "invert", "renoise"]


@dataclass(frozen=True)
class StepEvent:
    """One step a sampler took.

    ``src``/``dst`` index the schedule's levels; ``dst`` is the level the sampler continues from
    (for an ``official`` zag that is the label the released code gives the result, not the level
    its arithmetic reached). ``x`` is the latent after the step.
    """

    kind: StepKind
    src: int
    dst: int
    sigma_src: float
    sigma_dst: float
    x: Tensor
    guidance: float | None
    model: str


@runtime_checkable
class Observer(Protocol):
    """Called after every step, in order. Observers must not modify ``event.x``."""

    def __call__(self, event: StepEvent) -> None: ...


@dataclass
class TrajectoryRecorder:
    """Keeps every event (with a detached copy of the latent): the path a sampler actually took."""

    events: list[StepEvent] = field(default_factory=list)

    def __call__(self, event: StepEvent) -> None:
        self.events.append(
            StepEvent(
                event.kind,
                event.src,
                event.dst,
                event.sigma_src,
                event.sigma_dst,
                event.x.detach().clone(),
                event.guidance,
                event.model,
            )
        )

    @property
    def kinds(self) -> list[StepKind]:
        return [e.kind for e in self.events]
