"""Splitting a run across processes with Hugging Face accelerate (no home-made process pool).

Launch with ``accelerate launch --multi_gpu --num_processes N -m zsampling run CONFIG`` (on a CPU
machine too: accelerate then runs N CPU processes over gloo). Each process takes every N-th batch
of ``run.batch_size`` items (whole batches, so an item is sampled with the same companions
whatever the number of processes: see `zsampling.runs.batches`) and writes its own outputs; the
manifest is appended under a file lock and compacted by the main process once everyone is done.
A plain ``zsampling run`` never imports accelerate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from zsampling.core.extras import extra


@dataclass
class Shard:
    """This process's place in the run."""

    rank: int = 0
    world: int = 1
    state: Any = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def take(self, items: list[Any]) -> list[Any]:
        """This process's share: every ``world``-th entry (a run passes whole batches)."""
        return items[self.rank :: self.world]

    def barrier(self) -> None:
        if self.state is not None:
            self.state.wait_for_everyone()


def current_shard() -> Shard:
    """The shard of this process: accelerate's state when launched distributed, else the whole."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Shard()
    import torch
    with extra("distributed", "A run under accelerate launch"):
        from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    if torch.cuda.is_available():
        torch.cuda.set_device(state.local_process_index)
    return Shard(state.process_index, state.num_processes, state)
