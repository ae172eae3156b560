"""The ``step-log`` observer: one JSON line per step next to each output."""

from __future__ import annotations

import json
from typing import ClassVar

import torch

from zsampling.core.component import Component
from zsampling.core.events import ObservedItem, Observer, StepEvent


class StepLog(Component):
    """Write one JSON line per step (kind, levels, guidance, latent mean/std) next to each output.

    Cheap enough to leave on; the first place to look when a run drifts or turns NaN.
    """

    name: ClassVar[str] = "step-log"

    def bind(self, item: ObservedItem) -> Observer:
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
