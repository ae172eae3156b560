"""``zsampling demo``: Z-Sampling against standard sampling on the analytic model.

Every sampler starts from the same noise for the same (class, seed), so comparisons are paired.
Besides standard sampling at the same guidance, it shows the two fair baselines of the evaluation
protocol: standard sampling with as many model evaluations (more steps), and standard sampling at
the guidance one zigzag round acts like to first order (``2 * gamma1 - gamma2``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from rich.console import Console
from rich.table import Table

from zsampling.adapters.analytic import AnalyticModel, demo_mixture
from zsampling.outputs import atomic_write
from zsampling.samplers import ReflectiveSampler, Standard, Zigzag
from zsampling.sampling import initial_noise, sample
from zsampling.schedules import Uniform


@dataclass
class Arm:
    label: str
    latents: torch.Tensor
    alignment: torch.Tensor
    fidelity: torch.Tensor
    rows_per_item: float
    seconds_per_item: float


def wilson(wins: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a winning rate."""
    if n == 0:
        return (0.0, 1.0)
    p = wins / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def scatter(arms: list[Arm], labels: torch.Tensor, size: int = 360) -> Image.Image:
    """Side-by-side scatter plots of the samples, coloured by requested class."""
    colours = [(220, 50, 47), (60, 160, 60), (38, 110, 210)]
    img = Image.new("RGB", (size * len(arms), size + 24), "white")
    draw = ImageDraw.Draw(img)
    for k, arm in enumerate(arms):
        x0 = k * size
        draw.rectangle([x0, 24, x0 + size - 1, size + 23], outline=(180, 180, 180))
        draw.text((x0 + 6, 6), arm.label, fill=(0, 0, 0))
        for point, lab in zip(arm.latents.tolist(), labels.tolist(), strict=True):
            px = x0 + size / 2 + point[0] * size / 7
            py = 24 + size / 2 - point[1] * size / 7
            draw.ellipse([px - 1.5, py - 1.5, px + 1.5, py + 1.5], fill=colours[lab % 3])
    return img


def analytic_demo(
    out: Path, *, seeds: int, steps: int, guidance: float, console: Console
) -> list[Arm]:
    """Run the comparison, print the table, write ``comparison.png``; returns the arms."""
    model = AnalyticModel(demo_mixture())
    classes = list(model.mixture.class_names)
    prompts = [c for c in classes for _ in range(seeds)]
    seed_list = [s for _ in classes for s in range(seeds)]
    noise, _ = initial_noise(model.latent_shape(), seed_list)
    labels = model.encode(prompts)[0]["label"]
    zig = Zigzag(guidance=guidance)
    runs: list[tuple[str, ReflectiveSampler, int]] = [
        (f"standard, guidance {guidance:g}", Standard(guidance=guidance), steps),
        (f"zigzag, guidance {guidance:g}", zig, steps),
        (
            f"standard, {3 * steps - 2} steps (equal cost)",
            Standard(guidance=guidance),
            3 * steps - 2,
        ),
        (
            f"standard, guidance {2 * guidance:g} (2*g1 - g2)",
            Standard(guidance=2 * guidance),
            steps,
        ),
    ]
    arms = []
    for label, sampler, n_steps in runs:
        start = time.perf_counter()
        res = sample(model, sampler, prompts=prompts, noise=noise, schedule=Uniform(steps=n_steps))
        secs = time.perf_counter() - start
        x = res.latents.to(torch.float64)
        post = model.mixture.class_posterior(x)[torch.arange(len(prompts)), labels]
        arms.append(
            Arm(
                label,
                x,
                post,
                model.mixture.log_density(x, labels),
                res.counter.rows / len(prompts),
                secs / len(prompts),
            )
        )

    base = arms[0]
    table = Table(title=f"Analytic 3-class mixture: {len(prompts)} paired samples, T = {steps}")
    for col in ("sampler", "alignment", "fidelity", "zigzag wins", "rows/item", "ms/item"):
        table.add_column(col)
    for arm in arms:
        if arm is arms[1]:
            wins_txt = "-"
        else:
            wins = int((arms[1].alignment > arm.alignment).sum())
            lo, hi = wilson(wins, len(prompts))
            wins_txt = f"{wins / len(prompts):.1%} [{lo:.1%}, {hi:.1%}]"
        table.add_row(
            arm.label,
            f"{arm.alignment.mean():.4f}",
            f"{arm.fidelity.mean():.3f}",
            wins_txt,
            f"{arm.rows_per_item:.0f}",
            f"{1000 * arm.seconds_per_item:.3f}",
        )
    console.print(table)
    console.print(
        "alignment: true posterior of the requested class; fidelity: true log p(x | "
        "class); zigzag wins: paired share of higher alignment, 95% Wilson interval."
    )
    png = out / "comparison.png"
    atomic_write(png, lambda p: scatter(arms[:2] + arms[3:], labels).save(p, format="PNG"))
    console.print(
        f"wrote {png}  (zigzag vs standard alignment: "
        f"{base.alignment.mean():.4f} -> {arms[1].alignment.mean():.4f})"
    )
    return arms
