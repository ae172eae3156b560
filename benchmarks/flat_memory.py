"""Does a long run keep its memory flat? 5,000 digits items, resident memory every 500.

Usage: ``python benchmarks/flat_memory.py OUT_FOLDER [--items 5000] [--steps 4] [--every 500]``.
Prints one JSON object (and writes it to ``OUT_FOLDER/memory.json``): the resident set size
(VmRSS, kB) when item 1, 500, 1000, ... is about to be sampled, and the growth from item 1,000
to the last, with the target (under 5%) and whether it was met.

A real ``zsampling run``: the embedded digits model, standard DDIM at ``--steps`` steps, guidance
2, ``run.batch_size = 8``, ten prompts times ``items / 10`` seeds, every item written as a PNG
with its manifest line. Item 1,000 is the baseline rather than item 1 because the first
thousand items warm up what is meant to stay (torch's allocator pools, the manifest's page cache,
lazy imports); growth after it would be a leak. Not part of the test suite (minutes of CPU).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

CONFIG = """
[model]
use = "digits"
[schedule]
use = "uniform"
steps = {steps}
[sampler]
use = "standard"
guidance = 2.0
[run]
prompts = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
seeds = {seeds}
batch_size = 8
output = "{out}"
"""
TARGET = 0.05
BASELINE_ITEM = 1000


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def measure(out: Path, items: int, steps: int, every: int) -> dict[str, Any]:
    from zsampling.plugins.manager import default_registry
    from zsampling.runs.config import load_config
    from zsampling.runs.run import RunItem, execute

    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    config = out / "run.toml"
    seeds = list(range(items // 10))
    config.write_text(CONFIG.format(steps=steps, seeds=seeds, out=out / "outputs"))
    curve: dict[int, int] = {}
    made = 0

    def progress(item: RunItem, total_steps: int) -> Any:
        nonlocal made
        made += 1
        if made == 1 or made % every == 0:
            curve[made] = rss_kb()
        return lambda event: None

    results = execute(load_config(config, default_registry()), progress=progress)
    curve[len(results)] = rss_kb()
    base = curve.get(BASELINE_ITEM, min(curve.values()))
    growth = (curve[max(curve)] - base) / base
    report = {
        "items": len(results),
        "generated": sum(not r.skipped for r in results),
        "steps": steps,
        "batch_size": 8,
        "rss_kb": curve,
        "growth_from_item_1000": round(growth, 4),
        "target": f"< {TARGET:.0%}",
        "met": growth < TARGET,
    }
    (out / "memory.json").write_text(json.dumps(report, indent=2))
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--every", type=int, default=500)
    args = parser.parse_args(argv)
    report = measure(args.out, args.items, args.steps, args.every)
    print(json.dumps(report))
    return 0 if report["met"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
