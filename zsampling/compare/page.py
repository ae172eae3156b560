"""The compare page: one HTML file a person opens from the file system, offline.

Self-contained: the grids are embedded (data URIs), the style and the table sorting are inline,
nothing is fetched. Each grid links to its PNG and every output is linked from the table, so
images open full size next to the page (the links are relative: the folder can be moved whole).
The table has one row per cell: its swept values, its costs per image, and every score column
(`zsampling.compare.scores`); clicking a column head sorts by it (numbers as numbers).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from zsampling.compare.axes import Axis
from zsampling.compare.cells import CellResult

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } figure { margin: 1em 0; } figcaption { color: #555; }
figure img { max-width: 100%; image-rendering: pixelated; border: 1px solid #ddd; }
table { border-collapse: collapse; margin-top: 1em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; cursor: pointer; user-select: none; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.files a { margin-right: 0.6em; white-space: nowrap; } .note { color: #555; max-width: 60em; }
"""

SORT = """
document.querySelectorAll("table.sortable th").forEach((th, col) => {
  th.addEventListener("click", () => {
    const body = th.closest("table").tBodies[0];
    const up = th.getAttribute("aria-sort") !== "ascending";
    th.closest("tr").querySelectorAll("th").forEach((h) => h.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", up ? "ascending" : "descending");
    const key = (tr) => {
      const cell = tr.cells[col];
      const n = parseFloat(cell.dataset.value);
      return Number.isNaN(n) ? cell.textContent : n;
    };
    const rows = [...body.rows].sort((a, b) => {
      const [x, y] = [key(a), key(b)];
      const order = typeof x === "number" && typeof y === "number"
        ? x - y : String(x).localeCompare(String(y));
      return up ? order : -order;
    });
    rows.forEach((tr) => body.appendChild(tr));
  });
});
"""


@dataclass(frozen=True)
class Grid:
    """A grid written next to the page: its file and what it shows."""

    path: Path
    caption: str


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def link(page: Path, target: Path) -> str:
    """``target`` relative to the page's folder, as a URL path."""
    return Path(os.path.relpath(target, page.parent)).as_posix()


def _cell(value: Any) -> str:
    """A table cell: numbers right-aligned and sortable as numbers."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        return f'<td class="num" data-value="{value!r}">{escape(shown)}</td>'
    return f"<td>{escape(str(value))}</td>"


def cell_table(page: Path, axes: list[Axis], results: list[CellResult]) -> str:
    """One row per cell: its values, files, costs and scores."""
    scores = list(dict.fromkeys(name for r in results for name in r.scores))
    heads = [
        "#",
        *(a.key for a in axes),
        "outputs",
        "guided calls / image",
        "model rows / image",
        "seconds / image",
        "made now",
        *scores,
    ]
    lines = ['<table class="sortable" id="cells"><thead><tr>']
    lines += [f"<th>{escape(h)}</th>" for h in heads]
    lines.append("</tr></thead><tbody>")
    for k, result in enumerate(results):
        values = [a.values[i] for a, i in zip(axes, result.cell.position, strict=True)]
        files = " ".join(
            f'<a href="{escape(link(page, i.path))}">{escape(i.prompt)} / {i.seed}</a>'
            for i in result.items
        )
        row = [
            _cell(k + 1),
            *(_cell(v) for v in values),
            f'<td class="files">{files}</td>',
            _cell(result.mean(lambda i: i.guided_calls)),
            _cell(result.mean(lambda i: i.rows)),
            _cell(round(result.mean(lambda i: i.seconds), 4)),
            _cell(result.made),
            *(_cell(result.scores.get(name, "-")) for name in scores),
        ]
        lines.append("<tr>" + "".join(row) + "</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def render_page(
    page: Path,
    title: str,
    summary: list[str],
    axes: list[Axis],
    grids: list[Grid],
    results: list[CellResult],
    notes: list[str],
) -> str:
    """The whole page as one HTML text (see the module docstring)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        *(f'<p class="note">{escape(line)}</p>' for line in summary),
    ]
    for grid in grids:
        parts.append(
            f'<figure><a href="{escape(link(page, grid.path))}"><img src="{data_uri(grid.path)}" '
            f'alt="{escape(grid.caption)}"></a><figcaption>{escape(grid.caption)}</figcaption>'
            "</figure>"
        )
    parts.append(f"<h2>Every cell ({len(results)})</h2>")
    parts.append(cell_table(page, axes, results))
    parts += [f'<p class="note">{escape(line)}</p>' for line in notes]
    parts.append(f"<script>{SORT}</script></body></html>")
    return "\n".join(parts) + "\n"
