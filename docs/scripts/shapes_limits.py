"""What limits the shipped shapes model: cheap experiments that continue its training.

``python docs/scripts/shapes_limits.py ARM STEPS`` (one thread) takes the shipped pipeline
(its VAE and text encoder, its UNet as the starting point), trains the UNet ``STEPS`` more steps
with the shipped recipe's optimiser on the VAE latents of the shipped recipe's 20,000 training
renders, and prints the testbed's standard accuracy (guidance 3, its 8 items on each of its six
common and six hard prompts) every ``STEPS // 3`` steps. ``ARM`` is ``frozen`` (the text encoder
stays at its random initialisation, as shipped) or ``joint`` (the text encoder trains with the
UNet, at the same learning rate). The figures are in docs/shapes.md ("What limits the model").
"""

from __future__ import annotations

import copy
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zsampling import Standard
from zsampling.adapters.shapes import PACKAGED, ShapesAdapter, load_shapes_pipeline
from zsampling.evaluation.frontier import run_arm
from zsampling.evaluation.testbeds import shapes_testbed
from zsampling.shapes import pipeline as parts
from zsampling.shapes.data import HARD_PROMPTS, training_set
from zsampling.shapes.train import Recipe, encode_latents

EMA_DECAY = 0.995
"""Shorter than the recipe's 0.998: the average starts at the shipped weights and a few hundred
steps must move it."""


def accuracy(folder: Path) -> str:
    """The testbed's standard accuracy at its guidance, hard and common prompts apart."""
    testbed = shapes_testbed()
    testbed.load = lambda: ShapesAdapter(path=str(folder)).load()
    arm = run_arm(testbed, "s", "s", "cfg", Standard(guidance=testbed.guidance))
    hard = np.array([p in HARD_PROMPTS for p in arm.prompts])
    cells = []
    for name, rows in (("hard", hard), ("common", ~hard)):
        acc = arm.stats["accuracy"][rows].mean()
        pos = np.nanmean(arm.stats["position"][rows])
        att = np.nanmean(arm.stats["attribution"][rows])
        cells.append(f"{name} exact {acc:.3f} attribution {att:.2f} position {pos:.2f}")
    return "; ".join(cells)


def save(pipe: Any, unet: Any, text_encoder: Any, folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    parts.assemble(pipe.vae, text_encoder, pipe.tokenizer, unet, pipe.scheduler).save_pretrained(
        folder, safe_serialization=True
    )


def main(arm: str, steps: int) -> None:
    torch.set_num_threads(1)
    recipe = Recipe()
    pipe = load_shapes_pipeline(PACKAGED)
    images, prompts = training_set(recipe.train_images, seed=recipe.seed)
    latents = encode_latents(pipe.vae, images) * pipe.vae.config.scaling_factor
    ids = pipe.tokenizer(
        [*prompts, ""], padding="max_length", max_length=parts.MAX_TOKENS, return_tensors="pt"
    ).input_ids
    unet, text_encoder = pipe.unet.train(), pipe.text_encoder
    trained = list(unet.parameters())
    text_encoder.requires_grad_(arm == "joint")
    if arm == "joint":
        text_encoder.train()
        trained += list(text_encoder.parameters())
    ema = [copy.deepcopy(m).eval().requires_grad_(False) for m in (unet, text_encoder)]
    ema_params = [p for m in ema for p in m.parameters()]
    live = [*unet.parameters(), *text_encoder.parameters()]
    opt = torch.optim.AdamW(trained, lr=recipe.unet_lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(7)
    ac = parts.build_scheduler().alphas_cumprod
    out = Path(tempfile.mkdtemp(prefix="shapes-limits-"))
    print(f"start ({arm}): {accuracy(PACKAGED)}", flush=True)
    start, losses = time.process_time(), []
    for step in range(steps):
        idx = torch.randint(0, len(latents), (recipe.unet_batch,), generator=gen)
        text = idx.clone()
        text[torch.rand(recipe.unet_batch, generator=gen) < 0.1] = -1
        t = torch.randint(0, 1000, (recipe.unet_batch,), generator=gen)
        noise = torch.randn(latents[idx].shape, generator=gen)
        a = ac[t].view(-1, 1, 1, 1)
        states = text_encoder(ids[text])[0]
        pred = unet(a.sqrt() * latents[idx] + (1 - a).sqrt() * noise, t, states).sample
        loss = torch.nn.functional.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for e, p in zip(ema_params, live, strict=True):
                e.lerp_(p, 1 - EMA_DECAY)
        losses.append(float(loss.detach()))
        if (step + 1) % max(1, steps // 3) == 0:
            save(pipe, ema[0], ema[1], out)
            cpu = time.process_time() - start
            print(
                f"+{step + 1} steps ({cpu:.0f} s CPU, loss {np.mean(losses[-100:]):.4f}): "
                f"{accuracy(out)}",
                flush=True,
            )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
