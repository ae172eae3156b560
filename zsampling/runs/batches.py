"""Which items a run samples together: batches cut from the plan at fixed places.

A run samples ``run.batch_size`` items per `zsampling.core.sampling.sample` call. Where the cuts
fall is a property of the plan, never of what happens to be missing: item ``i`` is always sampled
with the plan items ``k*B .. k*B + B - 1`` (``k = i // B``, ``B`` the batch size). So an item's
output does not depend on which other outputs already exist (a resumed run samples the whole batch
again and writes only what is missing), on which process makes it (accelerate shards take whole
batches), or on whether it is made alone (``zsampling reproduce`` samples the item's batch and
writes only the item): the same settings give the same bytes.

Batching is not free of rounding: a network evaluates 16 rows with other kernels than 2, so the
outputs of a batch equal those of batch size 1 to float tolerance, not bit for bit. Each item's
noise is its own (one generator per seed), so that is the only difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar


class Plannable(Protocol):
    """What batching needs of an item: its place in the plan and what it samples."""

    @property
    def index(self) -> int: ...

    @property
    def prompt(self) -> str: ...

    @property
    def seed(self) -> int: ...


Item = TypeVar("Item", bound=Plannable)


@dataclass(frozen=True)
class Batch(Generic[Item]):
    """``rows`` are sampled together, in plan order; only ``wanted`` (a subset) are written."""

    rows: tuple[Item, ...]
    wanted: tuple[Item, ...]


def plan_batches(
    plan: Sequence[Item], size: int, items: Sequence[Item] | None = None
) -> list[Batch[Item]]:
    """The batches that make ``items`` (default: the whole ``plan``), in plan order.

    An item is placed by its ``index`` in ``plan``; the other rows of its batch are the plan's
    items there (or the given items of the same index, whose output stems they carry). Items that
    are not the plan's item at their index (same prompt and seed) have no fixed batch: they are
    batched among themselves, in the order given.
    """
    if size < 1:
        raise ValueError(f"batch size {size} < 1")
    planned = {p.index: p for p in plan}
    members: dict[int, list[int]] = {}
    for i in sorted(planned):
        members.setdefault(i // size, []).append(i)
    groups: dict[int, dict[int, Item]] = {}
    loose: list[Item] = []
    for item in items if items is not None else plan:
        at = planned.get(item.index)
        if at is None or (at.prompt, at.seed) != (item.prompt, item.seed):
            loose.append(item)
        else:
            groups.setdefault(item.index // size, {})[item.index] = item
    batches = []
    for k in sorted(groups):
        wanted = groups[k]
        rows = tuple(wanted.get(i, planned[i]) for i in members[k])
        batches.append(Batch(rows, tuple(wanted[i] for i in sorted(wanted))))
    for start in range(0, len(loose), size):
        chunk = tuple(loose[start : start + size])
        batches.append(Batch(chunk, chunk))
    return batches
