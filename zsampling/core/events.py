"""Step events and who watches them: observers, the trajectory recorder, observer components.

Every move of a `zsampling.core.path.SamplingPath` emits a `StepEvent` to the run's observers
(progress bars, previews, step logs, the recorder tests use). An observer *component*
(``[[observers]]``) makes one observer per generated item from an `ObservedItem`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal, Protocol, runtime_checkable

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


class ObservedItem(Protocol):
    """What an observer component learns about the item it watches (a run's item has these)."""

    @property
    def index(self) -> int: ...

    @property
    def prompt(self) -> str: ...

    @property
    def seed(self) -> int: ...

    @property
    def output_stem(self) -> Path:
        """Where the item's output goes, without a suffix (side files sit next to it)."""
        ...


@runtime_checkable
class ObserverComponent(Protocol):
    """``[[observers]]``: ``bind(item)`` makes the observer for one generated item."""

    name: ClassVar[str]

    def bind(self, item: ObservedItem) -> Observer: ...
