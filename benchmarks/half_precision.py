"""Half precision against diffusers: how far apart the final latents end, and from float32.

Not a benchmark test (no timing): ``python benchmarks/half_precision.py [--device cuda]``. For
the tiny SD and SDXL pipelines (random weights, saved and loaded with ``from_pretrained`` in each
dtype), 10 steps of standard sampling at guidance 5 on two prompts, it prints the relative
distance ``||a - b|| / ||b||`` between zsampling's final latents and diffusers' ``pipe(...)`` in
the same dtype, and each one's distance from diffusers' float32 run. tests/test_half_precision.py
asserts bounds on the same quantities on the CPU; ``--device cuda`` measures them where half
precision is actually used (the noise is drawn on the CPU either way, so both devices start from
the same latents).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import torch

from zsampling import Standard
from zsampling.adapters.diffusers import DiffusersAdapter
from zsampling.integrations.diffusers import generate
from zsampling.testing.compare import relative_norm as relative
from zsampling.testing.half_precision import GUIDANCE, PROMPTS, SEEDS, STEPS, pipeline_latents
from zsampling.testing.tiny import write_tiny_pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="where the pipelines run (default: cpu)")
    device = parser.parse_args().device
    torch.set_num_threads(1)
    print(f"device: {device}, torch {torch.__version__}")
    print(
        "| model | dtype | zsampling vs diffusers, same dtype | diffusers vs its float32 run "
        "| zsampling vs diffusers' float32 run |"
    )
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for family in ("sd", "sdxl"):
            folder = write_tiny_pipeline(Path(tmp) / family, "sdxl" if family == "sdxl" else "sd")
            reference: Any = DiffusersAdapter(path=str(folder), device=device).load()
            full = pipeline_latents(reference.pipeline, torch.float32)
            for name in ("float16", "bfloat16"):
                dtype = getattr(torch, name)
                model: Any = DiffusersAdapter(path=str(folder), dtype=name, device=device).load()
                model.pipeline.set_progress_bar_config(disable=True)
                ours = generate(
                    model.pipeline,
                    PROMPTS,
                    sampler=Standard(guidance=GUIDANCE),
                    steps=STEPS,
                    seed=SEEDS,
                    output_type="latent",
                )
                assert isinstance(ours, torch.Tensor)
                theirs = pipeline_latents(model.pipeline, dtype)
                print(
                    f"| {family.upper()} | {name} | {relative(ours, theirs):.2e} "
                    f"| {relative(theirs, full):.2e} | {relative(ours, full):.2e} |"
                )


if __name__ == "__main__":
    main()
