"""Per-step hooks: progress bars, previews, and trajectory recording for tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol, runtime_checkable

import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor

if TYPE_CHECKING:
    from zsampling.run import RunItem

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


class StepLog(BaseModel):
    """Write one JSON line per step (kind, levels, guidance, latent mean/std) next to each output.

    Cheap enough to leave on; the first place to look when a run drifts or turns NaN.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: ClassVar[str] = "step-log"

    def bind(self, item: RunItem) -> Observer:
        path = item.output_stem.with_suffix(".steps.jsonl")

        def log(event: StepEvent) -> None:
            x = event.x.to(torch.float64)
            row = {
                "kind": event.kind,
                "src": event.src,
                "dst": event.dst,
                "sigma_src": event.sigma_src,
                "sigma_dst": event.sigma_dst,
                "guidance": event.guidance,
                "model": event.model,
                "mean": float(x.mean()),
                "std": float(x.std()) if x.numel() > 1 else 0.0,
            }
            with path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")

        return log
