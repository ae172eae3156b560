"""The half-precision comparison with diffusers: its prompts, seeds and settings, and the
pipeline's own run. tests/test_half_precision.py bounds what it measures and
benchmarks/half_precision.py prints it, so both measure the same thing."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from zsampling.testing.tiny import latents_noise

PROMPTS = ["a red cube", "a cat on a mat"]
SEEDS = [3, 4]
STEPS = 10
GUIDANCE = 5.0


def pipeline_latents(pipe: Any, dtype: torch.dtype) -> Tensor:
    """``pipe(...)``'s final latents in ``dtype``, from the noise diffusers draws for `SEEDS`."""
    out = pipe(
        PROMPTS,
        latents=latents_noise(SEEDS, dtype=dtype).to(pipe.device),
        output_type="latent",
        guidance_scale=GUIDANCE,
        num_inference_steps=STEPS,
    )
    images: Tensor = out.images
    return images
