"""``zsampling demo``: Z-Sampling against standard sampling, paired, with numbers and pictures.

Every sampler starts from the same noise for the same (class, seed), so comparisons are paired.
Besides standard sampling at the same guidance, the table shows the two fair baselines of the
evaluation protocol: standard sampling with as many model evaluations (more steps), and standard
sampling at the guidance one zigzag round acts like to first order (``2 * gamma1 - gamma2``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from rich.console import Console
from rich.table import Table

from zsampling.core.model import ModelAdapter
from zsampling.core.sampling import initial_noise, sample
from zsampling.evaluation.stats import wilson
from zsampling.runs.outputs import atomic_write
from zsampling.samplers import ReflectiveSampler, Standard, Zigzag
from zsampling.schedules import Uniform

Scorer = Callable[[torch.Tensor], tuple[dict[str, np.ndarray], dict[str, float]]]
"""Latents -> (per-item scores, set-level scores). The first per-item score decides wins."""


@dataclass
class Arm:
    label: str
    latents: torch.Tensor
    scores: dict[str, np.ndarray]
    set_scores: dict[str, float] = field(default_factory=dict)
    rows_per_item: float = 0.0
    seconds_per_item: float = 0.0


def standard_runs(guidance: float, steps: int) -> list[tuple[str, ReflectiveSampler, int]]:
    """The arms of the demo: zigzag, and standard at equal guidance, equal cost, 2 * gamma1."""
    return [
        (f"standard g={guidance:g}", Standard(guidance=guidance), steps),
        (f"zigzag g={guidance:g}", Zigzag(guidance=guidance), steps),
        (f"standard, {3 * steps - 2} steps", Standard(guidance=guidance), 3 * steps - 2),
        (f"standard g={2 * guidance:g}", Standard(guidance=2 * guidance), steps),
    ]


def compare(
    model: ModelAdapter,
    prompts: list[str],
    seeds: list[int],
    runs: list[tuple[str, ReflectiveSampler, int]],
    scorer: Scorer,
) -> list[Arm]:
    """Run each sampler on the same prompts and noise; score every output."""
    noise, _ = initial_noise(model.latent_shape(), seeds)
    arms = []
    for label, sampler, steps in runs:
        start = time.perf_counter()
        res = sample(
            model, sampler, prompts=prompts, noise=noise, seeds=seeds, schedule=Uniform(steps=steps)
        )
        secs = time.perf_counter() - start
        scores, set_scores = scorer(res.latents)
        arms.append(
            Arm(
                label,
                res.latents,
                scores,
                set_scores,
                res.counter.rows / len(prompts),
                secs / len(prompts),
            )
        )
    return arms


def print_table(arms: list[Arm], title: str, console: Console, legend: str) -> None:
    """The comparison table; wins are zigzag (arm 1) against each other arm, paired."""
    zig = arms[1]
    first = next(iter(zig.scores))
    table = Table(title=title, padding=(0, 1))
    table.add_column("sampler", no_wrap=True)
    for name in [*zig.scores, *zig.set_scores]:
        table.add_column(name)
    for col in ("zigzag wins", "rows/img", "ms/img"):
        table.add_column(col, no_wrap=True)
    for arm in arms:
        if arm is zig:
            wins_txt = "-"
        else:
            wins = int((zig.scores[first] > arm.scores[first]).sum())
            n = len(arm.scores[first])
            lo, hi = wilson(wins, n)
            wins_txt = f"{wins / n:.0%} [{lo:.0%},{hi:.0%}]"
        values = [f"{v.mean():.4g}" for v in arm.scores.values()]
        values += [f"{v:.4g}" for v in arm.set_scores.values()]
        table.add_row(
            arm.label,
            *values,
            wins_txt,
            f"{arm.rows_per_item:.0f}",
            f"{1000 * arm.seconds_per_item:.1f}",
        )
    console.print(table)
    console.print(legend + f" Zigzag wins: paired share of higher {first}, 95% Wilson interval.")


def digit_grid(
    arms: list[Arm], classes: int, seeds: int, show: int = 4, scale: int = 4
) -> Image.Image:
    """Rows: classes; columns: ``show`` seeds of standard | the same seeds with zigzag.

    Tiles are separated by a thin grey line (8x8 digits on black would otherwise run into
    each other) and the two samplers by a wider gap.
    """
    cell, line, gap = 8 * scale, 2, 10
    step = cell + line
    width = 2 * show * step + gap
    img = Image.new("L", (width, classes * step), 90)
    for col, arm in enumerate(arms[:2]):
        pixels = ((arm.latents.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        for c in range(classes):
            for s in range(min(show, seeds)):
                tile = Image.fromarray(pixels[c * seeds + s, 0].numpy(), mode="L")
                tile = tile.resize((cell, cell), Image.Resampling.NEAREST)
                img.paste(tile, (col * (show * step + gap) + s * step, c * step))
    return img


def digits_demo(
    out: Path, *, seeds: int, steps: int, guidance: float, console: Console
) -> list[Arm]:
    """The main job: the embedded digits model, every class, a few seeds, judged independently."""
    from zsampling.adapters.digits import DigitsAdapter
    from zsampling.digits.data import CLASSES
    from zsampling.digits.judge import judge

    model = DigitsAdapter().load()
    prompts = [c for c in CLASSES for _ in range(seeds)]
    seed_list = [s for _ in CLASSES for s in range(seeds)]
    labels = np.array([int(p) for p in prompts])
    j = judge()

    def scorer(latents: torch.Tensor) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        x = latents.clamp(-1, 1)
        probs = j.probabilities(x)
        chosen = np.clip(probs[np.arange(len(labels)), labels], 1e-300, 1.0)
        return (
            {
                "log p(digit)": np.log(chosen),
                "accuracy": (probs.argmax(1) == labels).astype(float),
                "realism": j.realism(x, labels),
            },
            {"FD": j.frechet(x)},
        )

    arms = compare(model, prompts, seed_list, standard_runs(guidance, steps), scorer)
    print_table(
        arms,
        f"Embedded digits model: {len(prompts)} paired images, T = {steps}",
        console,
        f"log p(digit) / accuracy: an independent classifier (held-out accuracy "
        f"{j.accuracy:.1%}) on the requested digit (alignment); realism: log-density of its "
        "features among held-out real digits of that class; FD: Frechet distance of features "
        "to held-out real digits (lower is better).",
    )
    png = out / "comparison.png"
    atomic_write(png, lambda p: digit_grid(arms, len(CLASSES), seeds).save(p, format="PNG"))
    console.print(f"wrote {png}: rows are digits 0-9, left standard, right zigzag, same noise")
    return arms


def scatter(arms: list[Arm], labels: torch.Tensor, size: int = 360) -> Image.Image:
    """Side-by-side scatter plots of 2-D samples, coloured by requested class."""
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
    """The same comparison on the analytic mixture, where alignment and fidelity are exact."""
    from zsampling.adapters.analytic import AnalyticModel, demo_mixture

    model = AnalyticModel(demo_mixture())
    classes = list(model.mixture.class_names)
    prompts = [c for c in classes for _ in range(seeds)]
    seed_list = [s for _ in classes for s in range(seeds)]
    labels = model.encode(prompts)[0]["label"]

    def scorer(latents: torch.Tensor) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        x = latents.to(torch.float64)
        post = model.mixture.class_posterior(x)[torch.arange(len(prompts)), labels]
        return (
            {"alignment": post.numpy(), "fidelity": model.mixture.log_density(x, labels).numpy()},
            {},
        )

    arms = compare(model, prompts, seed_list, standard_runs(guidance, steps), scorer)
    print_table(
        arms,
        f"Analytic 3-class mixture: {len(prompts)} paired samples, T = {steps}",
        console,
        "alignment: true posterior of the requested class; fidelity: true log p(x | class).",
    )
    png = out / "comparison.png"
    atomic_write(png, lambda p: scatter(arms[:2] + arms[3:], labels).save(p, format="PNG"))
    console.print(f"wrote {png}")
    return arms
