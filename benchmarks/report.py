"""Turn a pytest-benchmark JSON file into the Markdown tables of docs/benchmarks.md.

Usage::

    python -m pytest benchmarks --benchmark-only -q --benchmark-json results.json
    python benchmarks/report.py results.json

Every benchmark of this suite stores its figures in ``extra_info``: ``metric``, ``setup``,
``ratio`` (the headline: median of per-round ratios) with its spread (``ratio_low`` to
``ratio_high`` over ``rounds`` rounds), ``ratio_of_mins``, ``target`` and ``met``;
the rest (arm times, model rows, memory) goes to the details table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HEADLINE = (
    "metric",
    "setup",
    "ratio",
    "ratio_low",
    "ratio_high",
    "rounds",
    "ratio_of_mins",
    "target",
    "met",
)
# Bookkeeping kept in the JSON but left out of the details table.
QUIET = ("checksum_", "hwm_reset_", "heap_trimmed_", "arm_")


def fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-2 or abs(value) >= 1e4 else f"{value:.3f}"
    return str(value)


def tables(data: dict[str, Any]) -> str:
    machine = data.get("machine_info", {})
    cpu = machine.get("cpu", {})
    lines = [
        f"Run: {data.get('datetime', '?')}, Python {machine.get('python_version', '?')}, "
        f"{cpu.get('brand_raw', machine.get('processor', '?'))}, "
        f"{cpu.get('count', '?')} logical CPUs.",
        "",
        "| benchmark | measured | setup | ratio | spread of rounds | ratio of minima | target "
        "| met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    details = ["", "| benchmark | detail | value |", "|---|---|---|"]
    for bench in data["benchmarks"]:
        info = bench.get("extra_info", {})
        name = bench["name"].removeprefix("test_")
        low, high = info.get("ratio_low"), info.get("ratio_high")
        spread = f"{fmt(low)}-{fmt(high)} ({info.get('rounds')} rounds)" if low is not None else ""
        lines.append(
            f"| `{name}` | {info.get('metric', '')} | {info.get('setup', '')} | "
            f"{fmt(info.get('ratio'))} | {spread} | {fmt(info.get('ratio_of_mins'))} | "
            f"{fmt(info.get('target'))} | {fmt(info.get('met'))} |"
        )
        for key, value in info.items():
            if key not in HEADLINE and not key.startswith(QUIET):
                details.append(f"| `{name}` | {key} | {fmt(value)} |")
    return "\n".join(lines + details) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    sys.stdout.write(tables(json.loads(Path(argv[0]).read_text(encoding="utf-8"))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
