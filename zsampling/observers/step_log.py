"""The ``step-log`` observer: one JSON line per step next to each output."""

from __future__ import annotations

import json
from typing import ClassVar

import torch

from zsampling.core.component import Component
from zsampling.core.events import ObservedItem, Observer, StepEvent
from zsampling.core.files import append_bytes, entry_kind


class StepLog(Component):
    """Write one JSON line per step (kind, levels, guidance, latent mean/std) next to each output.

    Cheap enough to leave on; the first place to look when a run drifts or turns NaN. Lines are
    appended without following links (a link planted as the log file is refused, not written
    through).
    """

    name: ClassVar[str] = "step-log"

    def bind(self, item: ObservedItem) -> Observer:
        path = item.output_stem.with_name(item.output_stem.name + ".steps.jsonl")
        # An item is bound when it is (re)made: the lines of an attempt that did not finish (a
        # killed run, a batch that ran out of memory) are not this item's steps.
        if entry_kind(path) == "file":
            path.unlink()

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
            append_bytes(path, (json.dumps(row) + "\n").encode("utf-8"), sync=False)

        return log
