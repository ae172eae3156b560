"""Running the cells of a sweep: each one an ordinary run, read back from its own manifest.

A cell is `zsampling.runs.run.execute` on the cell's config, in the cell's folder: its outputs,
manifest lines, embedded settings and ``zsampling reproduce`` are a single run's. What the grid
and the page show of a cell (files, costs, metrics) is read from the manifest, so a cell kept
from an earlier, interrupted compare shows what the run that made it recorded.

The one thing cells share is the loaded model: consecutive cells with the same ``[model]``
(adapter and patches) get the model the previous cell loaded (`SharedModels`), so a sweep over an
SDXL folder loads it once, not once per cell; a model no cell needs any more is let go first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zsampling.compare.axes import Cell
from zsampling.core.model import ModelAdapter
from zsampling.plugins.registry import Registry
from zsampling.runs.blame import Blame
from zsampling.runs.config import ModelSpec, RunConfig
from zsampling.runs.outputs import MANIFEST, read_manifest
from zsampling.runs.run import execute, load_model


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


def spec_key(spec: ModelSpec) -> str:
    """What makes two model specs the same model: the adapter and patches with their settings."""
    parts = [[c.name, c.model_dump(mode="json")] for c in [spec.adapter, *spec.patches]]
    return json.dumps(parts, sort_keys=True)


class SharedModels:
    """A `zsampling.runs.run.ModelLoader` that hands a loaded model to every later cell with the
    same spec; `keep_only` lets go of the models the next cell does not use, before it loads."""

    def __init__(self) -> None:
        self.loaded: dict[str, ModelAdapter] = {}

    def keep_only(self, config: RunConfig) -> None:
        wanted = {spec_key(s) for s in [config.model, *config.models.values()]}
        for key in set(self.loaded) - wanted:
            del self.loaded[key]

    def __call__(self, spec: ModelSpec, blame: Blame) -> ModelAdapter:
        key = spec_key(spec)
        if key not in self.loaded:
            self.loaded[key] = load_model(spec, blame)
        return self.loaded[key]


def run_cells(
    cells: list[Cell],
    registry: Registry,
    *,
    overwrite: bool = False,
    progress: Callable[[Cell, int, int], None] | None = None,
) -> list[CellResult]:
    """Run every cell in order (existing outputs kept unless ``overwrite``)."""
    results, models = [], SharedModels()
    for k, cell in enumerate(cells):
        if progress is not None:
            progress(cell, k, len(cells))
        models.keep_only(cell.config)
        done = execute(cell.config, overwrite=overwrite, registry=registry, load=models)
        records = read_manifest(cell.folder / MANIFEST)
        items = []
        for r in done:
            assert r.path is not None  # every item of a finished run has its output
            items.append(
                CellItem(r.item.prompt, r.item.seed, r.path, records[r.path.name], r.skipped)
            )
        results.append(CellResult(cell, items))
    return results
