"""generate() from the installed wheel, run from outside the checkout by .ci/run-wheel.

The package must come from the venv's site-packages (not the source tree), carry its model
weights and licence files, and sample a tiny random-weight diffusers pipeline built from configs:
Zigzag gives images of the pipeline's size, and Standard equals the pipeline's own sampling.
"""

from __future__ import annotations

import sys
from importlib import metadata, resources
from pathlib import Path

import torch

import zsampling
from zsampling import Standard, Zigzag, generate
from zsampling.testing.tiny import tiny_sd_pipeline

checkout = Path(sys.argv[1]).resolve()
installed = Path(zsampling.__file__).resolve()
assert checkout not in installed.parents, f"zsampling was imported from the checkout: {installed}"
assert "site-packages" in installed.parts, installed

dist = metadata.distribution("zsampling")
licences = {Path(str(f)).name for f in dist.files or () if "licenses" in str(f)}
assert {"LICENSE", "NOTICE"} <= licences, licences
weights = [
    resources.files("zsampling") / "models" / name
    for name in ("digits/unet", "digit-pairs/unet", "judge/judge.safetensors")
]
assert all(w.is_dir() or w.is_file() for w in weights), weights

pipe = tiny_sd_pipeline()
images = generate(pipe, ["a red cube", "a blue ball"], sampler=Zigzag(guidance=5.0), steps=4)
side = pipe.unet.config.sample_size * pipe.vae_scale_factor
assert len(images) == 2 and images[0].size == (side, side), images
ours = generate(
    pipe, "a red cube", sampler=Standard(guidance=5.0), steps=4, seed=3, output_type="latent"
)
theirs = pipe(
    "a red cube",
    num_inference_steps=4,
    guidance_scale=5.0,
    output_type="latent",
    generator=torch.Generator().manual_seed(3),
).images
error = (ours - theirs).abs().max().item()
assert error < 1e-4, error
print(
    f"wheel {dist.version} from {installed.parent}: LICENSE and NOTICE present, weights present; "
    f"generate() works, Standard == pipe() (max abs latent difference {error:.1e})"
)
