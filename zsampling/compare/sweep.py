"""``zsampling compare``: a sweep in one command, its labelled grids and the page.

The folder it writes::

    OUT/cells/<cell>/     each cell's run: outputs, manifest.jsonl (an ordinary run's folder)
    OUT/grids/*.png       a labelled grid per prompt (and per value of a third axis)
    OUT/index.html        the page: the grids and a sortable table of every cell

Every cell is planned and validated first (all problems of all cells reported together), then
run in order; cells whose outputs exist are kept, so running the same command again after an
interruption only makes what is missing, and then redraws the grids and the page.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from PIL import Image

from zsampling.compare.axes import AXIS_NAMES, Axis, Cell, parse_axis, plan_cells
from zsampling.compare.cells import CellResult, run_cells
from zsampling.compare.grid import GridSpec, draw_grid
from zsampling.compare.page import Grid, render_page
from zsampling.compare.scores import COLUMN_NOTES, Scorer, default_scorers
from zsampling.core.errors import InvalidArgument
from zsampling.plugins.registry import Registry
from zsampling.runs.outputs import atomic_write, slug

PAGE = "index.html"


@dataclass
class Compared:
    """What a compare made: the cells' results, the grids and the page."""

    axes: list[Axis]
    results: list[CellResult]
    grids: list[Grid]
    page: Path
    seconds: float


def parse_axes(texts: dict[str, str | None]) -> list[Axis]:
    """The x, y, z options as axes, in that order; y needs x and z needs y (as in an X/Y/Z
    plot), and ``[run]`` settings are not swept: every cell runs the same prompts and seeds."""
    axes: list[Axis] = []
    for name in AXIS_NAMES:
        text = texts.get(name)
        if text is None:
            continue
        if len(axes) != AXIS_NAMES.index(name):
            before = AXIS_NAMES[len(axes)]
            raise InvalidArgument(
                f"--{name}", text, f"an axis after --{before} (give --{before} first)"
            )
        axis = parse_axis(name, text)
        if axis.key.split(".")[0] == "run":
            raise InvalidArgument(
                f"--{name}",
                text,
                "a setting outside [run] (every cell runs the same prompts, "
                "seeds and output layout; sweep the sampler, solver, schedule, guider or model)",
            )
        axes.append(axis)
    return axes


def items_by_prompt(result: CellResult) -> dict[str, list[int]]:
    """Each prompt's seeds, in the run's order (the same in every cell)."""
    seeds: dict[str, list[int]] = {}
    for item in result.items:
        seeds.setdefault(item.prompt, []).append(item.seed)
    return seeds


def write_grids(out: Path, axes: list[Axis], results: list[CellResult]) -> list[Grid]:
    """A grid per prompt and z value; none where the outputs are not images."""
    if any(i.path.suffix != ".png" for r in results for i in r.items):
        return []
    folder = out / "grids"
    folder.mkdir(parents=True, exist_ok=True)
    zs: list[int | None] = list(range(len(axes[2].values))) if len(axes) > 2 else [None]
    grids = []
    for n, (prompt, seeds) in enumerate(items_by_prompt(results[0]).items()):
        for z in zs:
            cells = [r for r in results if z is None or r.cell.position[2] == z]
            spec = GridSpec(prompt, seeds, axes, cells, z)
            name = f"{n:02d}-{slug(prompt)}" + ("" if z is None else f"-z{z}") + ".png"
            atomic_write(folder / name, partial(_save, draw_grid(spec)))
            grids.append(Grid(folder / name, f"{spec.title}   ({spec.subtitle})"))
    return grids


def _save(image: Image.Image, path: Path) -> None:
    image.save(path, format="PNG")


def run_compare(
    config: Path,
    sets: list[str],
    axes: list[Axis],
    out: Path,
    registry: Registry,
    *,
    overwrite: bool = False,
    scorers: list[Scorer] | None = None,
    progress: Callable[[Cell, int, int], None] | None = None,
) -> Compared:
    """Plan, check and run every cell, score them, draw the grids, write the page."""
    start = time.perf_counter()
    cells = plan_cells(config, sets, axes, registry, out)
    results = run_cells(cells, registry, overwrite=overwrite, progress=progress)
    for scorer in default_scorers(None) if scorers is None else scorers:
        scorer(results)
    grids = write_grids(out, axes, results)
    page = out / PAGE
    made = sum(r.made for r in results)
    total = sum(len(r.items) for r in results)
    base = results[0].cell.config.run
    summary = [
        f"{config.name} swept over {len(cells)} cell(s): "
        + (" x ".join(f"{a.key} ({len(a.values)})" for a in axes) or "the base config alone"),
        f"prompts: {', '.join(base.prompts)}; seeds: {', '.join(str(s) for s in base.seeds)} "
        f"(the same in every cell); {made} of {total} outputs made now, the rest kept from an "
        "earlier run.",
    ]
    notes = [
        "Costs are per image: guided calls (one guided prediction, however many branches), "
        "model rows (network batch rows, which is what time scales with) and seconds (as "
        "recorded by the run that made the image).",
        "Each cell is an ordinary run in cells/<cell>/: zsampling reproduce <image> re-runs any "
        "image from the settings embedded in it.",
    ]
    if not grids:
        summary.append("No grids: this model's outputs are tensors (.safetensors), not images.")
    columns = {name for r in results for name in r.scores}
    notes += [text for name, text in COLUMN_NOTES.items() if name in columns]
    html = render_page(
        page, f"zsampling compare: {config.name}", summary, axes, grids, results, notes
    )
    atomic_write(page, lambda p: p.write_text(html, encoding="utf-8"))
    return Compared(axes, results, grids, page, time.perf_counter() - start)
