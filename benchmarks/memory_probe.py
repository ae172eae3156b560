"""Peak resident memory of one sampling run, in a fresh process (used by test_memory.py).

Usage: ``python benchmarks/memory_probe.py ARM PIPELINE_DIR SIZE PROMPTS STEPS`` with ARM one of
``zsampling``, ``diffusers`` (standard DDIM, guidance 5), ``zsampling-zigzag``, ``official-zigzag``
(Z-Sampling, gamma2 = 0, lambda = T - 1). Prints one JSON line.

The process imports everything and loads the pipeline, runs the arm once (warm-up: lazy
initialisation), hands freed heap back to the OS (``gc.collect`` and glibc's ``malloc_trim(0)``,
so the measured run must fault its working set in again instead of reusing the warm-up's), then
records its resident set (VmRSS), resets the peak (``echo 5 > /proc/self/clear_refs``, Linux) and
runs the arm again: ``peak_kb`` (VmHWM afterwards) minus ``base_kb`` is what the run itself added.
Without a resettable peak (``hwm_reset: false``) ``peak_kb`` is the lifetime peak
(``getrusage``'s ``ru_maxrss``), which includes the warm-up run.
"""

from __future__ import annotations

import ctypes
import gc
import json
import resource
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_util import GUIDANCE, PROMPTS

from zsampling.testing.released_loop import released_zigzag
from zsampling.testing.tiny import latents_noise


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def trim_heap() -> bool:
    """glibc's ``malloc_trim(0)``: return free heap pages to the OS (False where unavailable)."""
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0) or True)
    except (OSError, AttributeError):
        return False


def main(arm: str, folder: str, size: int, n_prompts: int, steps: int) -> dict[str, Any]:
    from zsampling import DDIM, Standard, Uniform, Zigzag, sample
    from zsampling.adapters.diffusers import DiffusersAdapter
    from zsampling.schedules.diffusers import Scheduler

    torch.set_num_threads(1)
    model: Any = DiffusersAdapter(path=folder, height=size, width=size).load()
    pipe = model.pipeline
    prompts = PROMPTS[:n_prompts]
    noise = latents_noise(list(range(3, 3 + n_prompts)), model.latent_shape())

    def run() -> torch.Tensor:
        if arm == "zsampling":
            sampler: Any = Standard(guidance=GUIDANCE)
            schedule: Any = Scheduler(steps=steps)
            return sample(
                model, sampler, prompts=prompts, noise=noise, schedule=schedule, solver=DDIM()
            ).latents
        if arm == "diffusers":
            out = pipe(
                prompts,
                latents=noise.clone(),
                output_type="latent",
                guidance_scale=GUIDANCE,
                num_inference_steps=steps,
                height=size,
                width=size,
            )
            return out.images
        if arm == "zsampling-zigzag":
            zig = Zigzag(guidance=GUIDANCE, inversion="official", inversion_guidance=0.0)
            return sample(
                model, zig, prompts=prompts, noise=noise, schedule=Uniform(steps=steps)
            ).latents
        if arm == "official-zigzag":
            return released_zigzag(pipe, prompts, noise, steps, GUIDANCE, 0.0)
        raise SystemExit(f"unknown arm {arm!r}")

    run()
    gc.collect()
    trimmed = trim_heap()
    base = status_kb("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False
    out = run()
    peak = status_kb("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "arm": arm,
        "base_kb": base,
        "peak_kb": peak,
        "added_kb": peak - base,
        "hwm_reset": reset,
        "heap_trimmed": trimmed,
        "checksum": float(out.double().abs().sum()),
    }


if __name__ == "__main__":
    arm, folder, size, n, steps = sys.argv[1:6]
    print(json.dumps(main(arm, folder, int(size), int(n), int(steps))))
