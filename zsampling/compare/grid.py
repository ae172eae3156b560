"""The labelled grid of a sweep, one per prompt (and per value of a third axis), as an X/Y plot.

Columns are the x axis's values, rows the y axis's; each cell holds the prompt's images, one per
seed, left to right in the order the seeds are headed (the same seeds in every cell), and under
them the cell's cost per image: guided calls, model rows (network batch rows) and seconds. Large
images are downscaled to `MAX_SIDE` (Lanczos), small ones (the embedded models' 8x8 digits) are
upscaled by a whole factor to at least `MIN_SIDE` with nearest-neighbour, so every pixel stays a
sharp square.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from zsampling.compare.axes import Axis
from zsampling.compare.cells import CellResult

MAX_SIDE = 256
MIN_SIDE = 96
PAD = 4  # between the images of a cell
GAP = 16  # between cells
LINE = 17  # one line of text
BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
MUTED = (110, 110, 110)


def tile_size(width: int, height: int) -> tuple[int, int]:
    """The size an image is shown at in a grid (see the module docstring)."""
    side = max(width, height)
    if side > MAX_SIDE:
        return max(1, round(width * MAX_SIDE / side)), max(1, round(height * MAX_SIDE / side))
    factor = max(1, math.ceil(MIN_SIDE / side))
    return width * factor, height * factor


def tile(path: Path, size: tuple[int, int]) -> Image.Image:
    """An output as it is shown in a grid: RGB, at ``size``, never blurred when enlarged."""
    with Image.open(path) as img:
        rgb = img.convert("RGB")
    if rgb.size == size:
        return rgb
    enlarge = size[0] >= rgb.size[0]
    return rgb.resize(size, Image.Resampling.NEAREST if enlarge else Image.Resampling.LANCZOS)


def cost_line(result: CellResult) -> str:
    """A cell's cost per image: guided calls, model rows, seconds."""
    return (
        f"{result.mean(lambda i: i.guided_calls):g} guided, "
        f"{result.mean(lambda i: i.rows):g} rows, {result.mean(lambda i: i.seconds):.2f} s"
    )


@dataclass(frozen=True)
class GridSpec:
    """What one grid shows: a prompt, its seeds, the cells of one z value."""

    prompt: str
    seeds: list[int]
    axes: list[Axis]
    cells: list[CellResult]  # those of one z value, any order
    z: int | None = None

    @property
    def title(self) -> str:
        parts = [f"prompt: {self.prompt}"]
        if self.z is not None:
            parts.append(f"{self.axes[2].key} = {self.axes[2].values[self.z]}")
        return "   ".join(parts)

    @property
    def subtitle(self) -> str:
        names = [f"columns: {self.axes[0].key}" if self.axes else "one cell"]
        if len(self.axes) > 1:
            names.append(f"rows: {self.axes[1].key}")
        seeds = ", ".join(str(s) for s in self.seeds)
        return "   ".join([*names, f"seeds, left to right in each cell: {seeds}"])

    @property
    def shape(self) -> tuple[int, int]:
        """(columns, rows)."""
        return len(self.column_labels), len(self.row_labels)

    @property
    def column_labels(self) -> list[str]:
        return _labels(self.axes[0]) if self.axes else [""]

    @property
    def row_labels(self) -> list[str]:
        return _labels(self.axes[1]) if len(self.axes) > 1 else [""]

    def at(self, column: int, row: int) -> CellResult:
        for r in self.cells:
            pos = r.cell.position
            if (pos[0] if pos else 0) == column and (pos[1] if len(pos) > 1 else 0) == row:
                return r
        raise KeyError((column, row))


def _labels(axis: Axis) -> list[str]:
    """``guidance = 3``, ``sampler = zigzag``: the setting's own name (the component's for
    ``use``) with each value, as an X/Y plot heads them."""
    parts = axis.key.split(".")
    name = parts[-2] if parts[-1] == "use" and len(parts) > 1 else parts[-1]
    return [f"{name} = {v}" for v in axis.values]


def font(size: int = 13) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


@dataclass(frozen=True)
class Layout:
    """Where everything of a grid goes, worked out once from the spec and its text."""

    tile: tuple[int, int]
    left: int  # the row labels' width
    top: int  # the title, subtitle and column heads' height
    cell: tuple[int, int]
    size: tuple[int, int]

    def origin(self, column: int, row: int, seed_index: int = 0) -> tuple[int, int]:
        """The top-left pixel of one image: cell (column, row), the ``seed_index``-th seed."""
        x = self.left + column * (self.cell[0] + GAP) + seed_index * (self.tile[0] + PAD)
        return x, self.top + row * self.cell[1]


def layout(spec: GridSpec) -> Layout:
    text, measure = font(), ImageDraw.Draw(Image.new("RGB", (1, 1)))
    with Image.open(spec.at(0, 0).item(spec.prompt, spec.seeds[0]).path) as img:
        tw, th = tile_size(*img.size)
    columns, rows = spec.shape
    words = [*spec.column_labels, *(cost_line(r) for r in spec.cells)]
    width = max(
        [len(spec.seeds) * (tw + PAD) - PAD, *(measure.textlength(w, font=text) for w in words)]
    )
    left = int(max(measure.textlength(w, font=text) for w in spec.row_labels)) + GAP
    top = 4 * LINE + 8  # title, subtitle, column value, seeds
    cell = (int(width), th + LINE + GAP)
    full = max(left + columns * (cell[0] + GAP), int(measure.textlength(spec.subtitle, font=text)))
    return Layout((tw, th), left, top, cell, (full + GAP, top + rows * cell[1]))


def draw_grid(spec: GridSpec) -> Image.Image:
    """The grid image of ``spec`` (see the module docstring)."""
    at, text = layout(spec), font()
    grid = Image.new("RGB", at.size, BACKGROUND)
    draw = ImageDraw.Draw(grid)
    draw.text((4, 2), spec.title, fill=INK, font=font(15))
    draw.text((4, LINE + 4), spec.subtitle, fill=MUTED, font=text)
    columns, rows = spec.shape
    for c in range(columns):
        x0, _ = at.origin(c, 0)
        draw.text((x0, 2 * LINE + 8), spec.column_labels[c], fill=INK, font=text)
        for s, seed in enumerate(spec.seeds):
            draw.text((at.origin(c, 0, s)[0], 3 * LINE + 8), f"seed {seed}", fill=MUTED, font=text)
        for r in range(rows):
            result = spec.at(c, r)
            for s, seed in enumerate(spec.seeds):
                grid.paste(tile(result.item(spec.prompt, seed).path, at.tile), at.origin(c, r, s))
            x0, y0 = at.origin(c, r)
            draw.text((x0, y0 + at.tile[1] + 1), cost_line(result), fill=MUTED, font=text)
    for r in range(rows):
        y = at.origin(0, r)[1] + at.tile[1] // 2 - LINE // 2
        draw.text((4, y), spec.row_labels[r], fill=INK, font=text)
    return grid
