"""Training the shapes pipeline (``zsampling train-shapes``), deterministic from its seed.

Two phases on one CPU thread:

1. the ``AutoencoderKL`` learns to reconstruct renders (L1 plus a small KL term, fresh renders
   every step), then its ``scaling_factor`` is set so training latents have unit variance, as SD's
   is;
2. the UNet learns epsilon prediction on the VAE's latents of a fixed set of training renders
   (`zsampling.shapes.data.training_set`), conditioned on the text encoder's states of their
   prompts, 10% of them replaced by the empty prompt's (classifier-free guidance). An
   exponential moving average of the weights is what is saved; ``weak/unet`` is that average at
   ``weak_fraction`` of the steps (the weak model of W2SD and AutoGuidance). With
   ``train_text`` the text encoder trains in the same optimiser until that checkpoint and is
   frozen after it, so the weak and the final UNet read the same text states; at its random
   initialisation the colour words barely reach the UNet (docs/shapes.md).

Both phases stop at their step counts (``seconds`` is only a safety limit; a run cut by it says so
in ``training.json`` and is not reproducible).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zsampling.shapes import pipeline as parts
from zsampling.shapes.data import training_prompt, training_set
from zsampling.shapes.grammar import scene
from zsampling.shapes.world import render, to_model_range

Log = Callable[[str, int, float], None]


@dataclass(frozen=True)
class Recipe:
    """Everything a training run depends on."""

    seed: int = 0
    vae_steps: int = 600
    vae_batch: int = 32
    vae_lr: float = 2e-3
    unet_steps: int = 3000
    unet_batch: int = 64
    unet_lr: float = 2e-3
    train_images: int = 20000
    ema_decay: float = 0.998
    weak_fraction: float = 0.3
    train_text: bool = True
    """Train the text encoder with the UNet (same optimiser) until the weak checkpoint, then
    freeze it; otherwise it stays at its seeded random initialisation."""
    seconds: float = 3600.0


def train_vae(vae: Any, recipe: Recipe, log: Log | None) -> list[float]:
    """Phase 1 (see the module docstring); returns the loss of every step."""
    rng = np.random.default_rng(recipe.seed + 100)
    opt = torch.optim.AdamW(vae.parameters(), lr=recipe.vae_lr, weight_decay=0.0)
    vae.train()
    losses = []
    for step in range(recipe.vae_steps):
        imgs = np.stack([render(scene(training_prompt(rng), rng)) for _ in range(recipe.vae_batch)])
        x = torch.from_numpy(to_model_range(imgs))
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample()).sample
        loss = (recon - x).abs().mean() + 1e-6 * posterior.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for group in opt.param_groups:
            group["lr"] = recipe.vae_lr * min(1.0, (step + 1) / 50)
        opt.step()
        losses.append(float(loss.detach()))
        if log is not None and (step + 1) % 50 == 0:
            log("vae", step + 1, sum(losses[-50:]) / 50)
    return losses


@torch.no_grad()
def encode_latents(vae: Any, images: np.ndarray, batch: int = 500) -> torch.Tensor:
    """The VAE's posterior means of ``images`` (uint8 NHWC), unscaled."""
    vae.eval()
    out = [
        vae.encode(torch.from_numpy(to_model_range(images[i : i + batch]))).latent_dist.mode()
        for i in range(0, len(images), batch)
    ]
    return torch.cat(out)


def train_unet(
    unet: Any,
    text_encoder: Any,
    latents: torch.Tensor,
    ids: torch.Tensor,
    rows: torch.Tensor,
    recipe: Recipe,
    save_weak: Callable[[Any], None],
    log: Log | None,
) -> tuple[list[float], bool]:
    """Phase 2 on (latents, text): ``ids`` are the token ids of the distinct prompts,
    ``rows[i]`` the row of latent ``i``'s prompt and ``rows[-1]`` the empty prompt's. Returns the
    losses and whether the time limit cut the run."""
    gen = torch.Generator().manual_seed(recipe.seed + 200)
    ac = parts.build_scheduler().alphas_cumprod
    unet.train()
    ema = copy.deepcopy(unet).eval().requires_grad_(False)
    trained = list(unet.parameters())
    # a frozen encoder's states are computed once; a trained one's at every step
    frozen = None if recipe.train_text else parts.text_states_of(text_encoder, ids)
    if frozen is None:
        text_encoder.train().requires_grad_(True)
        trained += list(text_encoder.parameters())
    opt = torch.optim.AdamW(trained, lr=recipe.unet_lr, weight_decay=0.0)
    params, ema_params = list(unet.parameters()), list(ema.parameters())
    weak_at = int(recipe.weak_fraction * recipe.unet_steps)
    losses: list[float] = []
    start = time.process_time()
    for step in range(recipe.unet_steps):
        if time.process_time() - start > recipe.seconds:
            return losses, True
        idx = torch.randint(0, len(latents), (recipe.unet_batch,), generator=gen)
        x0 = latents[idx]
        text = rows[idx]
        text[torch.rand(recipe.unet_batch, generator=gen) < 0.1] = rows[-1]
        t = torch.randint(0, 1000, (recipe.unet_batch,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        a = ac[t].view(-1, 1, 1, 1)
        states = text_encoder(ids[text])[0] if frozen is None else frozen[text]
        pred = unet(a.sqrt() * x0 + (1 - a).sqrt() * noise, t, states).sample
        loss = torch.nn.functional.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for group in opt.param_groups:
            group["lr"] = recipe.unet_lr * min(1.0, (step + 1) / 200)
        opt.step()
        decay = min(recipe.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema_params, params, strict=True):
                e.lerp_(p, 1 - decay)
        losses.append(float(loss.detach()))
        if step + 1 == weak_at:
            save_weak(ema)
            # the weak UNet and the final one read the same text states: the encoder stops here
            text_encoder.eval().requires_grad_(False)
        if log is not None and (step + 1) % 100 == 0:
            log("unet", step + 1, sum(losses[-100:]) / 100)
    unet.load_state_dict(ema.state_dict())
    text_encoder.eval().requires_grad_(False)
    return losses, False


def train(out: Path, recipe: Recipe = Recipe(), log: Log | None = None) -> dict[str, Any]:
    """Train and save the pipeline to ``out`` (fp16 safetensors; ``weak/unet`` beside it) with a
    ``training.json`` of the recipe and what the run cost; return that record."""
    torch.manual_seed(recipe.seed)
    started = time.process_time()
    tokenizer = parts.build_tokenizer()
    text_encoder = parts.build_text_encoder(recipe.seed + 1)
    vae, unet = parts.build_vae(recipe.seed + 2), parts.build_unet(recipe.seed + 3)
    vae_losses = train_vae(vae, recipe, log)
    images, prompts = training_set(recipe.train_images, seed=recipe.seed)
    raw = encode_latents(vae, images)
    scale = float(1.0 / raw.std())
    vae.register_to_config(scaling_factor=scale)
    unique = sorted(set(prompts))
    ids = parts.token_ids(tokenizer, [*unique, ""])
    where = {p: i for i, p in enumerate(unique)}
    rows = torch.tensor([*(where[p] for p in prompts), len(unique)])
    weak_dir = out / "weak"

    def save_weak(ema: Any) -> None:
        ema.to(torch.float16).save_pretrained(weak_dir / "unet", safe_serialization=True)
        ema.to(torch.float32)

    unet_losses, cut = train_unet(
        unet, text_encoder, raw * scale, ids, rows, recipe, save_weak, log
    )
    scheduler = parts.build_scheduler()
    # UNet and VAE weights in half precision (diffusers loads them back as float32); the text
    # encoder in float32, since transformers keeps the dtype it finds.
    pipe = parts.assemble(vae.half(), text_encoder, tokenizer, unet.half(), scheduler)
    pipe.save_pretrained(out, safe_serialization=True)
    record = {
        "recipe": asdict(recipe),
        "cpu_seconds": round(time.process_time() - started, 1),
        "cut_by_time_limit": cut,
        "vae_loss_last_50": sum(vae_losses[-50:]) / max(1, len(vae_losses[-50:])),
        "unet_loss_first_100": sum(unet_losses[:100]) / max(1, len(unet_losses[:100])),
        "unet_loss_last_100": sum(unet_losses[-100:]) / max(1, len(unet_losses[-100:])),
        "unet_steps_done": len(unet_losses),
        "distinct_training_prompts": len(unique),
    }
    (out / "training.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record
