"""Training the embedded digits model (``zsampling train-digits``).

A small class-conditional ``UNet2DModel`` (class ``10`` is the null class, used with 10% label
dropout so classifier-free guidance works), epsilon prediction under DDPM's linear betas, saved as
a diffusers folder (``unet/`` + ``scheduler/``, safetensors) that the ``digits`` adapter loads
with ``from_pretrained`` like any other model.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from diffusers import DDIMScheduler, UNet2DModel

from zsampling.digits.data import NULL_CLASS, splits


def build_unet() -> Any:
    return UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        num_class_embeds=NULL_CLASS + 1,
        norm_num_groups=8,
    )


def build_scheduler() -> Any:
    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_schedule="linear",
        beta_start=0.0001,
        beta_end=0.02,
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type="epsilon",
    )


def train(
    out: Path,
    *,
    seconds: float = 480.0,
    max_steps: int = 100_000,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    ema_decay: float = 0.999,
    log: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train until ``seconds`` or ``max_steps``; save to ``out``; return the loss of every step."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    data, _ = splits()
    unet, sched = build_unet(), build_scheduler()
    unet.train()
    # An exponential moving average of the weights is what gets saved: it samples far better
    # than the last iterate after a short training run.
    ema = copy.deepcopy(unet).eval().requires_grad_(False)
    ac = sched.alphas_cumprod
    opt = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=0.0)
    warmup = 200
    losses: list[float] = []
    start = time.monotonic()
    step = 0
    while step < max_steps and time.monotonic() - start < seconds:
        idx = torch.randint(0, len(data.labels), (batch_size,), generator=gen)
        x0, labels = data.images[idx], data.labels[idx].clone()
        labels[torch.rand(batch_size, generator=gen) < 0.1] = NULL_CLASS
        t = torch.randint(0, 1000, (batch_size,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        a = ac[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        pred = unet(xt, t, class_labels=labels).sample
        loss = torch.nn.functional.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / warmup)
        opt.step()
        decay = min(ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema.parameters(), unet.parameters(), strict=True):
                e.lerp_(p, 1 - decay)
        losses.append(float(loss.detach()))
        step += 1
        if log is not None and step % 100 == 0:
            log(step, sum(losses[-100:]) / 100)
    out.mkdir(parents=True, exist_ok=True)
    ema.save_pretrained(out / "unet", safe_serialization=True)
    sched.save_pretrained(out / "scheduler")
    return losses
