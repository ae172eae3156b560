"""(d) Peak memory: zsampling against the diffusers pipeline, one fresh process per arm.

See memory_probe.py for what is measured. The two arms of a pair run at the same time (memory does
not depend on CPU contention); the benchmark's own timing is that of the subprocesses and means
nothing: the figures are in ``extra_info``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PROBE = Path(__file__).resolve().parent / "memory_probe.py"

CASES = {
    # id: (numerator arm, denominator arm, image size px, prompts, steps)
    "standard-32px": ("zsampling", "diffusers", 32, 2, 10),
    "standard-128px": ("zsampling", "diffusers", 128, 1, 4),
    "zigzag-32px": ("zsampling-zigzag", "official-zigzag", 32, 2, 10),
    "zigzag-128px": ("zsampling-zigzag", "official-zigzag", 128, 1, 4),
}


def probe_pair(folder: Path, arms: tuple[str, str], size: int, prompts: int, steps: int) -> Any:
    procs = [
        subprocess.Popen(
            [sys.executable, str(PROBE), arm, str(folder), str(size), str(prompts), str(steps)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for arm in arms
    ]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"memory probe failed (exit {proc.returncode})"
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


@pytest.mark.parametrize("case", list(CASES))
def test_peak_memory(benchmark: Any, tiny_sd_dir: Path, case: str) -> None:
    num_arm, den_arm, size, prompts, steps = CASES[case]
    found: dict[str, Any] = {}

    def measure() -> None:
        num, den = probe_pair(tiny_sd_dir, (num_arm, den_arm), size, prompts, steps)
        found.update(num=num, den=den)

    benchmark.pedantic(measure, rounds=1, iterations=1)
    num, den = found["num"], found["den"]
    assert abs(num["checksum"] - den["checksum"]) <= 1e-2 * abs(den["checksum"])
    ratio = num["added_kb"] / den["added_kb"]
    benchmark.extra_info.update(
        metric=f"peak RSS added by one run, {num_arm} / {den_arm}",
        setup=f"tiny SD, {size}px, {prompts} prompt(s), {steps} steps, fresh process per arm",
        ratio=ratio,
        peak_ratio=num["peak_kb"] / den["peak_kb"],
        **{f"{k}_{side}": v for side, r in (("num", num), ("den", den)) for k, v in r.items()},
        target="(none: reported)",
        met=None,
    )
