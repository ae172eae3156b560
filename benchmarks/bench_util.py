"""Helpers shared by the benchmarks (plain functions; nothing here is timed on import).

Timing protocol: every comparison runs its arms *interleaved* in one process (A B, then B A, ...)
after one warm-up call of each, so a burst of load from other processes on a shared CPU hits both
arms alike. The headline ratio is the median of the per-round ratios; the ratio of the per-arm
minima (the least-disturbed runs) is stored next to it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

PROMPTS = ["a red cube", "a cat on a mat"]
SEEDS = [3, 4]
GUIDANCE = 5.0


class Interleaved:
    """Arms timed round by round; call `round` from ``benchmark.pedantic``."""

    def __init__(self, arms: dict[str, Callable[[], Any]]) -> None:
        self.arms = arms
        self.times: dict[str, list[float]] = {name: [] for name in arms}
        self.outputs: dict[str, Any] = {}
        self._flip = False

    def warm_up(self) -> None:
        for name, fn in self.arms.items():
            self.outputs[name] = fn()

    def round(self) -> None:
        names = list(self.arms)
        if self._flip:
            names.reverse()
        self._flip = not self._flip
        for name in names:
            start = time.perf_counter()
            self.outputs[name] = self.arms[name]()
            self.times[name].append(time.perf_counter() - start)

    def ratio(self, num: str, den: str, scale: float = 1.0) -> dict[str, float]:
        """``num / den`` (times ``scale``): median per-round ratio and ratio of minima."""
        per_round = [scale * a / b for a, b in zip(self.times[num], self.times[den], strict=True)]
        return {
            "ratio": statistics.median(per_round),
            "ratio_of_mins": scale * min(self.times[num]) / min(self.times[den]),
            "rounds": len(per_round),
        }

    def ms(self) -> dict[str, float]:
        """Median milliseconds per arm."""
        return {f"{k}_ms": 1000 * statistics.median(v) for k, v in self.times.items()}


def verdict(value: float, target: float, op: str) -> dict[str, Any]:
    met = value <= target if op == "<=" else value < target
    return {"target": f"{op} {target:g}", "met": bool(met)}
