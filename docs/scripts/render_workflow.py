"""Draw a ComfyUI API-format workflow as a boxes-and-arrows PNG (the pictures in docs/comfyui.md).

    python docs/scripts/render_workflow.py examples/comfyui/*.json

writes ``docs/comfyui-<workflow name>.png`` for each file. Nodes are placed in columns by their
depth in the graph (a node sits right of everything it reads from); each box shows the node's
title, its class and its widget values, and each arrow one link, labelled with the input it
feeds. Needs matplotlib (the ``eval`` extra).
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

DOCS = Path(__file__).resolve().parents[1]
WIDTH, GAP_X, GAP_Y, LINE = 3.2, 1.3, 0.35, 0.22
ZSAMPLING = "#dbeafe"  # the pack's nodes
COMFY = "#f3f4f6"  # ComfyUI's own


def links(node: dict[str, Any]) -> dict[str, str]:
    """The node's linked inputs: input name -> source node id."""
    return {k: str(v[0]) for k, v in node["inputs"].items() if isinstance(v, list)}


def depths(prompt: dict[str, Any]) -> dict[str, int]:
    """Each node's column: one more than the deepest node it reads from (0 for sources)."""
    out: dict[str, int] = {}

    def depth(key: str) -> int:
        if key not in out:
            sources = links(prompt[key]).values()
            out[key] = 1 + max((depth(s) for s in sources), default=-1)
        return out[key]

    for key in prompt:
        depth(key)
    return out


def label(node: dict[str, Any]) -> list[str]:
    """Title, class, then ``name: value`` for every widget (long values wrapped)."""
    title = node.get("_meta", {}).get("title", node["class_type"])
    lines = [title, f"({node['class_type']})"]
    for name, value in node["inputs"].items():
        if not isinstance(value, list):
            lines += textwrap.wrap(f"{name}: {value}", 34, subsequent_indent="  ")
    return lines


def layout(prompt: dict[str, Any]) -> dict[str, tuple[float, float, float]]:
    """``(x, top y, height)`` of each node's box."""
    column = depths(prompt)
    boxes: dict[str, tuple[float, float, float]] = {}
    tops: dict[int, float] = {}
    for key in sorted(prompt, key=lambda k: (column[k], int(k) if k.isdigit() else k)):
        c = column[key]
        rows = max(len(label(prompt[key])), 1.2 + 0.9 * len(links(prompt[key])))
        height = LINE * (rows + 0.6)
        top = tops.get(c, 0.0)
        boxes[key] = (c * (WIDTH + GAP_X), top, height)
        tops[c] = top - height - GAP_Y
    return boxes


def draw(path: Path, out: Path) -> None:
    prompt: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    boxes = layout(prompt)
    right = max(x for x, _, _ in boxes.values()) + WIDTH
    bottom = min(top - h for _, top, h in boxes.values())
    fig, ax = plt.subplots(figsize=(right * 0.95, -bottom * 0.95 + 0.6))
    for key, (x, top, height) in boxes.items():
        node = prompt[key]
        colour = ZSAMPLING if node["class_type"].startswith("ZSampling") else COMFY
        box = FancyBboxPatch(
            (x, top - height), WIDTH, height, boxstyle="round,pad=0.02", fc=colour, ec="#374151"
        )
        ax.add_patch(box)
        for i, line in enumerate(label(node)):
            weight = "bold" if i == 0 else "normal"
            ax.text(x + 0.08, top - LINE * (i + 0.8), line, fontsize=7.5, weight=weight)
    for key, node in prompt.items():
        x, top, height = boxes[key]
        for n, (name, source) in enumerate(links(node).items()):
            sx, stop, sheight = boxes[source]
            end = (x, top - LINE * (1.5 + n * 0.9) - 0.05)
            ax.annotate("", xy=end, xytext=(sx + WIDTH, stop - sheight / 2),
                        arrowprops={"arrowstyle": "->", "color": "#6b7280", "lw": 0.8,
                                    "connectionstyle": "arc3,rad=0.08"})  # fmt: skip
            ax.text(end[0] - 0.05, end[1] + 0.04, name, fontsize=6, ha="right", color="#4b5563")
    ax.set_xlim(-0.2, right + 0.2)
    ax.set_ylim(bottom - 0.2, 0.3)
    ax.axis("off")
    ax.set_title(f"{path.name}: blue = zsampling's nodes, grey = ComfyUI's", fontsize=9)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main(paths: list[str]) -> None:
    for name in paths:
        path = Path(name)
        out = DOCS / f"comfyui-{path.stem}.png"
        draw(path, out)
        print(out)


if __name__ == "__main__":
    main(sys.argv[1:])
