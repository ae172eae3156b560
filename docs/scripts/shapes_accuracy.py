"""The shipped shapes model's standard accuracy per CFG scale, on the hard and the common prompts,
and the VAE's round trip on renders: the figures docs/shapes.md quotes.

``python docs/scripts/shapes_accuracy.py`` (one thread; a few minutes on a CPU). Items: 5 per
prompt, each its own seed, T = 8 DDIM steps, as the testbed samples.
"""

from __future__ import annotations

import numpy as np
import torch

from zsampling import Standard
from zsampling.evaluation.frontier import run_arm
from zsampling.evaluation.testbeds import TESTBEDS
from zsampling.shapes.data import COMMON_PROMPTS, HARD_PROMPTS

SCALES = (1.0, 2.0, 3.0, 5.0, 8.0)


def vae_round_trip(n: int = 1200, seed: int = 99) -> str:
    from diffusers import AutoencoderKL

    from zsampling.adapters.shapes import PACKAGED
    from zsampling.shapes.data import training_set
    from zsampling.shapes.judge import judge
    from zsampling.shapes.world import from_model_range, to_model_range

    vae = AutoencoderKL.from_pretrained(PACKAGED / "vae").eval()
    images, prompts = training_set(n, seed=seed)
    with torch.no_grad():
        latents = vae.encode(torch.from_numpy(to_model_range(images))).latent_dist.mode()
        back = from_model_range(vae.decode(latents).sample.numpy())
    exact = np.mean([judge(b, p).right for b, p in zip(back, prompts, strict=True)])
    error = np.abs(back.astype(int) - images.astype(int)).mean()
    return f"VAE round trip of {n} renders: judge exact on {exact:.3f}; mean error {error:.2f}/255"


def main() -> None:
    torch.set_num_threads(1)
    print(vae_round_trip())
    for name, prompts in (("hard", HARD_PROMPTS), ("common", COMMON_PROMPTS)):
        testbed = TESTBEDS["shapes"](items_per_prompt=5, prompts=prompts)
        for scale in SCALES:
            arm = run_arm(testbed, "s", "s", "cfg", Standard(guidance=scale))
            means = {k: np.nanmean(v) for k, v in arm.stats.items() if k != "logp"}
            cells = " ".join(f"{k} {v:.2f}" for k, v in means.items())
            print(f"{name} prompts, CFG {scale:g}: {cells}")


if __name__ == "__main__":
    main()
