"""GPU checks that are not timings: host synchronisations, kernels, seeded half-precision noise.

On a machine with a CUDA GPU (nothing is downloaded; the SDXL-shaped pipeline of
`gpu_figures.py`, random weights, float16, 1024 px, 15 steps, its two prompts)::

    python benchmarks/device_checks.py syncs     # synchronisations per run: generate(), pipe()
    python benchmarks/device_checks.py kernels   # CUDA kernels and kernel time of one run each
    python benchmarks/device_checks.py noise     # do half-precision normals equal a float32 draw
                                                 # cast down, and initial_noise randn_tensor?

``syncs`` counts what ``torch.cuda.set_sync_debug_mode("warn")`` reports during one run of each
arm (a synchronisation stops the CPU from queueing the next kernels early); ``kernels`` reads
torch.profiler's CUDA events; both refuse to run without CUDA. ``noise`` runs anywhere (the
test suite runs it on the CPU). docs/benchmarks.md quotes their output next to these commands.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_figures import GUIDANCE, PROMPTS, SEEDS, sdxl_pipeline

from zsampling import Standard, initial_noise
from zsampling.integrations.diffusers import generate
from zsampling.testing.tiny import latents_noise

STEPS, PIXELS = 15, 1024


def arms(pipe: Any) -> dict[str, Callable[[], Any]]:
    """One SDXL run through zsampling and one through the pipeline, from the same noise."""
    size = PIXELS // 8
    latents = latents_noise(SEEDS, (4, size, size), torch.float16).to("cuda")
    common = {"height": PIXELS, "width": PIXELS, "output_type": "latent"}
    return {
        "generate()": lambda: generate(
            pipe, PROMPTS, sampler=Standard(guidance=GUIDANCE), steps=STEPS, seed=SEEDS, **common
        ),
        "pipe()": lambda: pipe(
            PROMPTS,
            latents=latents.clone(),
            guidance_scale=GUIDANCE,
            num_inference_steps=STEPS,
            **common,
        ).images,
    }


def synchronisations(run: Callable[[], Any]) -> int:
    """How many host synchronisations torch reports during ``run()``."""
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            run()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def kernels(run: Callable[[], Any]) -> tuple[int, float]:
    """CUDA kernels launched by ``run()`` and their total time in ms (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        run()
        torch.cuda.synchronize()
    events = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    return len(events), sum(e.device_time for e in events) / 1e3


def noise() -> None:
    """Whether this torch draws half-precision normals as a float32 draw cast down, and whether
    `initial_noise` equals diffusers' ``randn_tensor`` (it must, for seeds to mean one image)."""
    from diffusers.utils.torch_utils import randn_tensor

    print("torch", torch.__version__)
    for dtype in (torch.float16, torch.bfloat16):
        half = torch.randn((1, 16, 64, 64), generator=torch.Generator().manual_seed(3), dtype=dtype)
        cast = torch.randn((1, 16, 64, 64), generator=torch.Generator().manual_seed(3)).to(dtype)
        ours = initial_noise((16, 64, 64), [3, 4], dtype)[0]
        generators = [torch.Generator().manual_seed(s) for s in (3, 4)]
        theirs = randn_tensor((2, 16, 64, 64), generator=generators, dtype=dtype)
        print(
            f"{dtype}: half draw == float32 draw cast: {torch.equal(half, cast)}; "
            f"initial_noise == randn_tensor: {torch.equal(ours, theirs)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("check", choices=["syncs", "kernels", "noise"])
    args = parser.parse_args()
    if args.check == "noise":
        noise()
        return
    if not torch.cuda.is_available():
        parser.error(f"{args.check} needs a CUDA GPU")
    pipe = sdxl_pipeline("full", "cuda", torch.float16)
    pipe.set_progress_bar_config(disable=True)
    for name, run in arms(pipe).items():
        run()  # warm-up: the first run allocates and picks kernels
        if args.check == "syncs":
            print(f"{name}: {synchronisations(run)} synchronisations in a {STEPS}-step run")
        else:
            count, ms = kernels(run)
            print(f"{name}: {count} kernels, {ms:.1f} ms of kernel time")


if __name__ == "__main__":
    main()
