"""(e) ``zsampling run`` on the embedded digits model: the default ``run.batch_size`` against one
item at a time, per image, outputs compared.

Both arms run `zsampling.runs.run.execute` on the same config but for ``run.batch_size``, into
their own folder, replacing their outputs every round (``overwrite``): checks, claims, sampling,
decoding, PNG and manifest writes all count. The model is loaded once for the whole benchmark
(loading is per run, not per image).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bench_util import Interleaved, verdict

import zsampling.runs.run as run_module
from zsampling.plugins.manager import default_registry
from zsampling.runs.config import DEFAULT_BATCH_SIZE, RunConfig, validate_config
from zsampling.runs.outputs import read_output

ITEMS = 16  # eight digits, two seeds: two batches at the default size
STEPS = 10
# Measured here: the two arms' final latents (values within +-1.6) differ by at most 1.4e-5, the
# float32 rounding of batched kernels carried through 28 guided calls; 5e-5 (3e-5 of the range)
# leaves room for other CPUs and still fails any change of noise, level or guidance.
ATOL = 5e-5


def digits_config(folder: Path, batch_size: int) -> RunConfig:
    data = {
        "model": {"use": "digits"},
        "schedule": {"use": "uniform", "steps": STEPS},
        "sampler": {"use": "zigzag"},
        "run": {
            "prompts": [str(d) for d in range(ITEMS // 2)],
            "seeds": [0, 1],
            "batch_size": batch_size,
            "output": str(folder / f"batch{batch_size}"),
        },
    }
    return validate_config(data, default_registry())


def test_run_batch_vs_one_at_a_time(
    benchmark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded: dict[str, Any] = {}
    real_load = run_module.load_model

    def load_once(spec: Any, blame: Any = None) -> Any:
        if "model" not in loaded:
            loaded["model"] = real_load(spec, blame)
        return loaded["model"]

    monkeypatch.setattr(run_module, "load_model", load_once)
    configs = {size: digits_config(tmp_path, size) for size in (1, DEFAULT_BATCH_SIZE)}
    runs = Interleaved(
        {
            "one_at_a_time": lambda: run_module.execute(configs[1], overwrite=True),
            "batched": lambda: run_module.execute(configs[DEFAULT_BATCH_SIZE], overwrite=True),
        }
    )
    runs.warm_up()
    benchmark.pedantic(runs.round, rounds=7, iterations=1)
    one, batched = runs.outputs["one_at_a_time"], runs.outputs["batched"]
    assert [r.item.index for r in one] == [r.item.index for r in batched] == list(range(ITEMS))
    pairs = list(zip(one, batched, strict=True))
    diff = max(float((a.latents - b.latents).abs().max()) for a, b in pairs)
    pixels = sum(int((read_output(a.path) != read_output(b.path)).sum()) for a, b in pairs)
    speedup = runs.ratio("one_at_a_time", "batched")
    ms = {k: v / ITEMS for k, v in runs.ms().items()}
    benchmark.extra_info.update(
        metric=f"time per image, batch size 1 / default batch size {DEFAULT_BATCH_SIZE} "
        "(speed-up of zsampling run)",
        setup=f"digits model, {ITEMS} images, zigzag defaults, T={STEPS}, execute() with "
        "outputs written",
        **speedup,
        max_abs_diff=diff,
        pixels_differing=f"{pixels} of {ITEMS * 64}",
        one_at_a_time_ms_per_image=ms["one_at_a_time_ms"],
        batched_ms_per_image=ms["batched_ms"],
        **verdict(speedup["ratio"], 4.0, ">="),
    )
    assert diff <= ATOL, diff
