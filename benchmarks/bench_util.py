"""Helpers shared by the benchmarks (plain functions; nothing here is timed on import).

Timing protocol: every comparison runs its arms *interleaved* in one process (A B, then B A, ...)
after one warm-up call of each, so a burst of load from other processes on a shared CPU hits both
arms alike. The headline ratio is the median of the per-round ratios, from at least `MIN_ROUNDS`
rounds; its spread (the lowest and highest per-round ratio, and the quartiles) and the ratio of
the per-arm minima (the least-disturbed runs) are stored next to it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

PROMPTS = ["a red cube", "a cat on a mat"]
SEEDS = [3, 4]
GUIDANCE = 5.0
MIN_ROUNDS = 7


class Interleaved:
    """Arms timed round by round; call `round` from ``benchmark.pedantic``."""

    def __init__(
        self, arms: dict[str, Callable[[], Any]], sync: Callable[[], None] | None = None
    ) -> None:
        self.arms = arms
        self.sync = sync or (lambda: None)  # e.g. torch.cuda.synchronize: time finished work
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
            self.sync()
            start = time.perf_counter()
            self.outputs[name] = self.arms[name]()
            self.sync()
            self.times[name].append(time.perf_counter() - start)

    def ratio(self, num: str, den: str, scale: float = 1.0, key: str = "ratio") -> dict[str, Any]:
        """``num / den`` (times ``scale``): the median per-round ratio (``key``), its spread
        (``key_low``/``key_high``: the extreme rounds, ``key_q1``/``key_q3``: the quartiles),
        and the ratio of the per-arm minima. Fewer than `MIN_ROUNDS` rounds is an error."""
        per_round = sorted(
            scale * a / b for a, b in zip(self.times[num], self.times[den], strict=True)
        )
        if len(per_round) < MIN_ROUNDS:
            raise ValueError(f"{len(per_round)} rounds; a ratio needs at least {MIN_ROUNDS}")
        q1, _, q3 = statistics.quantiles(per_round, n=4)
        return {
            key: statistics.median(per_round),
            f"{key}_low": per_round[0],
            f"{key}_q1": q1,
            f"{key}_q3": q3,
            f"{key}_high": per_round[-1],
            f"{key}_of_mins": scale * min(self.times[num]) / min(self.times[den]),
            f"{key}_rounds" if key != "ratio" else "rounds": len(per_round),
        }

    def ms(self) -> dict[str, float]:
        """Median milliseconds per arm."""
        return {f"{k}_ms": 1000 * statistics.median(v) for k, v in self.times.items()}


def verdict(value: float, target: float, op: str) -> dict[str, Any]:
    met = {"<=": value <= target, "<": value < target, ">=": value >= target}[op]
    return {"target": f"{op} {target:g}", "met": bool(met)}


@contextmanager
def networks_stubbed(pipe: Any, memo: dict[str, Any] | None = None) -> Iterator[Any]:
    """The pipeline with its networks (UNet or transformer, text encoders) answering every call
    with the output of their first real call: what is left of a run is the glue around the
    networks, zsampling's or diffusers'. ``memo`` keeps those outputs across uses (so a network
    runs once, not once per use); the networks are restored afterwards."""
    memo = {} if memo is None else memo
    names = ("unet", "transformer", "text_encoder", "text_encoder_2")
    modules = {n: getattr(pipe, n) for n in names if getattr(pipe, n, None) is not None}
    real = {n: m.forward for n, m in modules.items()}
    own = {n: m.__dict__.get("forward") for n, m in modules.items()}  # e.g. accelerate's hooks

    def remembering(name: str) -> Any:
        def forward(*args: Any, **kwargs: Any) -> Any:
            if name not in memo:
                memo[name] = real[name](*args, **kwargs)
            return memo[name]

        return forward

    try:
        for name, module in modules.items():
            module.forward = remembering(name)
        yield pipe
    finally:
        for name, module in modules.items():
            if own[name] is None:
                del module.forward  # the class's own forward again
            else:
                module.forward = own[name]
