"""Running the cells of a sweep: each one an ordinary run, read back from its own manifest.

A cell is `zsampling.runs.run.execute` on the cell's config, in the cell's folder: its outputs,
manifest lines, embedded settings and ``zsampling reproduce`` are a single run's. What the grid
and the page show of a cell (files, costs, metrics) is read from the manifest, so a cell kept
from an earlier, interrupted compare shows what the run that made it recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zsampling.compare.axes import Cell
from zsampling.plugins.registry import Registry
from zsampling.runs.outputs import MANIFEST, read_manifest
from zsampling.runs.run import execute


@dataclass(frozen=True)
class CellItem:
    """One output of a cell: its prompt and seed, its file and its manifest record."""

    prompt: str
    seed: int
    path: Path
    record: dict[str, Any]
    kept: bool

    @property
    def guided_calls(self) -> int:
        return int(self.record.get("evaluations", {}).get("guided_calls", 0))

    @property
    def rows(self) -> int:
        return int(self.record.get("evaluations", {}).get("rows", 0))

    @property
    def seconds(self) -> float:
        return float(self.record.get("seconds", 0.0))

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.record.get("metrics", {}))


@dataclass
class CellResult:
    """A cell after its run: every item, in the run's order, and any column a scorer added."""

    cell: Cell
    items: list[CellItem]
    scores: dict[str, Any] = field(default_factory=dict)

    @property
    def made(self) -> int:
        return sum(not i.kept for i in self.items)

    def mean(self, value: Callable[[CellItem], float]) -> float:
        return sum(value(i) for i in self.items) / len(self.items)

    def item(self, prompt: str, seed: int) -> CellItem:
        return next(i for i in self.items if (i.prompt, i.seed) == (prompt, seed))


def run_cells(
    cells: list[Cell],
    registry: Registry,
    *,
    overwrite: bool = False,
    progress: Callable[[Cell, int, int], None] | None = None,
) -> list[CellResult]:
    """Run every cell in order (existing outputs kept unless ``overwrite``)."""
    results = []
    for k, cell in enumerate(cells):
        if progress is not None:
            progress(cell, k, len(cells))
        done = execute(cell.config, overwrite=overwrite, registry=registry)
        records = read_manifest(cell.folder / MANIFEST)
        items = []
        for r in done:
            assert r.path is not None  # every item of a finished run has its output
            items.append(
                CellItem(r.item.prompt, r.item.seed, r.path, records[r.path.name], r.skipped)
            )
        results.append(CellResult(cell, items))
    return results
