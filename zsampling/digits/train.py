"""Training the embedded digits models (``zsampling train-digits``).

A small ``UNet2DModel``, epsilon prediction under DDPM's linear betas, 10% of the prompts dropped
to the null class so classifier-free guidance works, an exponential moving average of the weights
saved as a diffusers folder (``unet/`` + ``scheduler/``, and ``slots/`` for several digits) that
the ``digits`` and ``digit-pairs`` adapters load with ``from_pretrained``.

With ``slots=2`` the canvas is 8x16, a digit on each side. ``twins`` is the share of training
pairs whose two digits are the same class (different images): at 0.85 the model sees a given
pair of *different* digits about 0.15 / 90 of the time, so prompts like ``"3 7"`` go against what
it learned, as compositions a text-to-image model rarely saw do. ``weak/`` is the same training's
average at ``weak_fraction`` of the steps: a weaker model of the same family, for W2SD.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from diffusers import DDIMScheduler, UNet2DModel

from zsampling.digits.data import NULL_CLASS, Split, splits
from zsampling.digits.slots import SlotEmbedding


def build_unet(slots: int = 1) -> Any:
    """The digits UNet: the UNet's own class embedding for one slot, an external one for more."""
    conditioning: dict[str, Any] = (
        {"num_class_embeds": NULL_CLASS + 1} if slots == 1 else {"class_embed_type": "identity"}
    )
    return UNet2DModel(
        sample_size=(8, 8 * slots) if slots > 1 else 8,
        in_channels=1,
        out_channels=1,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
        **conditioning,
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


def draw_batch(
    data: Split, batch_size: int, slots: int, twins: float, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (B, 1, 8, 8 * slots) and their digits (B, slots), 10% of rows set to the null class.

    With several slots, each later slot repeats the first slot's class with probability ``twins``
    (another image of that digit) and is an independent draw otherwise.
    """
    first = torch.randint(0, len(data.labels), (batch_size,), generator=gen)
    by_class = torch.argsort(data.labels, stable=True)  # indices grouped by class
    counts = torch.bincount(data.labels, minlength=NULL_CLASS)
    starts = torch.cumsum(counts, 0) - counts
    columns = [first]
    for _ in range(1, slots):
        other = torch.randint(0, len(data.labels), (batch_size,), generator=gen)
        c = data.labels[first]
        offset = (torch.rand(batch_size, generator=gen) * counts[c]).long()
        same = by_class[starts[c] + offset]  # another image of the first slot's class
        twin = torch.rand(batch_size, generator=gen) < twins
        columns.append(torch.where(twin, same, other))
    images = torch.cat([data.images[c] for c in columns], dim=-1)
    labels = torch.stack([data.labels[c] for c in columns], dim=1)
    labels[torch.rand(batch_size, generator=gen) < 0.1] = NULL_CLASS
    return images, labels


def train(
    out: Path,
    *,
    slots: int = 1,
    twins: float = 0.0,
    seconds: float = 480.0,
    max_steps: int = 100_000,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    ema_decay: float = 0.999,
    weak_fraction: float | None = 0.25,
    log: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train until ``seconds`` of CPU time or ``max_steps``; save to ``out`` (and, unless
    ``weak_fraction`` is None, the checkpoint at that fraction to ``out/weak``) with a
    ``training.json`` of what the run was and cost; return the loss of every step."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    data, _ = splits()
    unet, sched = build_unet(slots), build_scheduler()
    embedding = (
        SlotEmbedding(slots=slots, dim=unet.config.block_out_channels[0] * 4) if slots > 1 else None
    )
    nets: list[Any] = [unet] + ([embedding] if embedding is not None else [])
    for net in nets:
        net.train()
    # An exponential moving average of the weights is what gets saved: it samples far better
    # than the last iterate after a short training run.
    emas = [copy.deepcopy(n).eval().requires_grad_(False) for n in nets]
    params = [p for n in nets for p in n.parameters()]
    ema_params = [p for n in emas for p in n.parameters()]
    ac = sched.alphas_cumprod
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    warmup = 200
    losses: list[float] = []
    start = time.process_time()
    step = 0
    weak_saved = False
    while step < max_steps and time.process_time() - start < seconds:
        x0, labels = draw_batch(data, batch_size, slots, twins, gen)
        t = torch.randint(0, 1000, (batch_size,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        a = ac[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        class_labels = labels[:, 0] if embedding is None else embedding(labels)
        pred = unet(xt, t, class_labels=class_labels).sample
        loss = torch.nn.functional.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / warmup)
        opt.step()
        decay = min(ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema_params, params, strict=True):
                e.lerp_(p, 1 - decay)
        losses.append(float(loss.detach()))
        step += 1
        if log is not None and step % 100 == 0:
            log(step, sum(losses[-100:]) / 100)
        elapsed = time.process_time() - start
        due = weak_fraction is not None and (
            step >= weak_fraction * max_steps or elapsed >= weak_fraction * seconds
        )
        if due and not weak_saved:
            _save(out / "weak", emas, sched)
            weak_saved = True
    _save(out, emas, sched)
    cpu_seconds = round(time.process_time() - start, 1)
    run = {"slots": slots, "twins": twins, "seed": seed, "batch_size": batch_size, "lr": lr}
    _write_record(out, losses, **run, steps=step, cpu_seconds=cpu_seconds, weak=weak_fraction)
    return losses


def _write_record(out: Path, losses: list[float], weak: float | None, **run: Any) -> None:
    """``training.json``: what the run was and cost, and its mean loss at the start and end."""
    record = {
        **run,
        "weak_fraction": weak,
        "loss_first_50": sum(losses[:50]) / max(1, len(losses[:50])),
        "loss_last_50": sum(losses[-50:]) / max(1, len(losses[-50:])),
    }
    (out / "training.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _save(out: Path, emas: list[Any], sched: Any) -> None:
    out.mkdir(parents=True, exist_ok=True)
    emas[0].save_pretrained(out / "unet", safe_serialization=True)
    if len(emas) > 1:
        emas[1].save_pretrained(out / "slots", safe_serialization=True)
    sched.save_pretrained(out / "scheduler")
