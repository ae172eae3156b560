"""``zsampling demo``: Z-Sampling against standard sampling on the hard prompts, in a minute.

The main job a new user runs. On the digit-pairs model (prompts of two different digits, which
the model mostly saw as twins) every arm samples the same items (each item its own noise):

- standard sampling at the testbed's guidance, and Z-Sampling at the same guidance;
- standard sampling with as many model evaluations (more steps): what the extra cost alone buys;
- standard sampling at twice the guidance (~ ``2 gamma1 - gamma2``, what one zigzag round acts
  like to first order): what a larger CFG scale alone buys.

The table puts alignment (judge accuracy: both digits right; mean log-probability) beside
set-level fidelity against held-out real pairs (energy distance, recall, coverage, diversity),
with the held-out real data as the first row. The full protocol, with a CFG sweep and
intervals, is ``zsampling eval`` and ``zsampling leaderboard``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from rich.console import Console
from rich.table import Table

from zsampling.core.sampler import ReflectiveSampler
from zsampling.evaluation.frontier import Arm, real_arm, run_arm
from zsampling.evaluation.testbeds import TESTBEDS, Testbed
from zsampling.runs.outputs import atomic_write
from zsampling.samplers import Standard, Zigzag

DEMO_PROMPTS = {
    "pairs": ["0 3", "1 8", "2 5", "3 0", "4 1", "5 2", "6 9", "7 4", "8 5", "9 6"],
    "shapes": [
        "a red circle",
        "a red circle and a blue square",
        "a red circle left of a blue square",
        "two red circles",
        "a blue circle",
        "a blue circle and a green square",
        "a green circle left of a red square",
        "two blue circles",
    ],
}


def demo_testbed(name: str, items_per_prompt: int) -> Testbed:
    """The testbed ``name`` cut to the demo's prompts (all of them for the other testbeds)."""
    return TESTBEDS[name](items_per_prompt=items_per_prompt, prompts=DEMO_PROMPTS.get(name))


def demo_arms(testbed: Testbed, guidance: float, steps: int) -> list[Arm]:
    """The four arms of the module docstring, run on the same items."""
    zigzag_cost = 3 * steps - 2
    runs: list[tuple[str, str, ReflectiveSampler, int]] = [
        ("standard", f"standard, g={guidance:g}", Standard(guidance=guidance), steps),
        ("zigzag", f"zigzag, g={guidance:g}", Zigzag(guidance=guidance), steps),
        (
            "equal-evals",
            f"standard, {zigzag_cost} steps, g={guidance:g}",
            Standard(guidance=guidance),
            zigzag_cost,
        ),
        ("double", f"standard, g={2 * guidance:g}", Standard(guidance=2 * guidance), steps),
    ]
    return [
        run_arm(testbed, key, label, "method", sampler, steps=n) for key, label, sampler, n in runs
    ]


def print_table(testbed: Testbed, arms: list[Arm], real: Arm, console: Console) -> None:
    table = Table(title=f"{testbed.title}: {len(arms[0].prompts)} items, T = {testbed.steps}")
    for col in (
        "arm",
        "accuracy",
        "log p",
        "energy",
        "recall",
        "coverage",
        "diversity",
        "evals/img",
        "ms/img",
    ):
        table.add_column(col, no_wrap=col == "arm")
    for arm in [real, *arms]:
        f = arm.fidelity
        table.add_row(
            arm.label,
            f"{arm.stats['accuracy'].mean():.3f}",
            f"{arm.stats['logp'].mean():.3f}",
            f"{f['energy']:.3g}",
            f"{f['recall']:.3f}",
            f"{f['coverage']:.3f}",
            f"{f['diversity']:.3g}",
            "-" if arm.kind == "real" else f"{arm.guided_calls_per_item:.0f}",
            "-" if arm.kind == "real" else f"{1000 * arm.seconds_per_item:.1f}",
        )
    console.print(table)
    judged = (
        "accuracy: the rule-based judge reads exactly what the prompt says; log p: the log of the "
        "share of the prompt's checks it passes. energy: energy distance of the images pooled to "
        "8x8x3"
        if testbed.name == "shapes"
        else "accuracy / log p: the independent judge (trained on real digits only, temperature-"
        "calibrated) on every requested digit. energy: energy distance of the judge's features"
    )
    console.print(
        f"{judged} to held-out real data of each prompt, averaged (lower is better; the real row "
        "is held-out data the reference never saw). recall / coverage: how much of the real data "
        "the samples cover. diversity: spread of the samples within a prompt (real data's is the "
        "yardstick)."
    )


def sample_grid(
    testbed: Testbed,
    arms: list[Arm],
    latents: dict[str, torch.Tensor],
    show: int = 3,
    scale: int = 5,
) -> Image.Image:
    """Rows: prompts (labelled); column groups: arms (headed by method and guidance), ``show``
    samples each, the same noise in every group; pixels upscaled ``scale`` times."""
    first = next(iter(latents.values()))
    h, w = first.shape[-2] * scale, first.shape[-1] * scale
    pad, label_w, head_h, gap = 3, 48, 30, 14
    group_w = show * (w + pad)
    width = label_w + len(arms) * (group_w + gap)
    height = head_h + len(testbed.prompts) * (h + pad)
    img = Image.new("L", (width, height), 235)
    draw = ImageDraw.Draw(img)
    for g, arm in enumerate(arms):
        x0 = label_w + g * (group_w + gap)
        for line, text in enumerate(arm.label.split(", ", 1)):
            draw.text((x0, 2 + 13 * line), text, fill=0)
        pixels = ((latents[arm.key].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        for r in range(len(testbed.prompts)):
            for s in range(show):
                tile = Image.fromarray(pixels[r * testbed.items_per_prompt + s, 0].numpy(), "L")
                tile = tile.resize((w, h), Image.Resampling.NEAREST)
                img.paste(tile, (x0 + s * (w + pad), head_h + r * (h + pad)))
    for r, prompt in enumerate(testbed.prompts):
        draw.text((4, head_h + r * (h + pad) + h // 2 - 6), f'"{prompt}"', fill=0)
    return img


def shapes_grid(
    testbed: Testbed,
    arms: list[Arm],
    latents: dict[str, torch.Tensor],
    show: int = 3,
    scale: int = 4,
) -> Image.Image:
    """The shapes demo's page: rows are prompts, column groups arms, ``show`` decoded colour
    samples each (the same noise in every group), upscaled ``scale`` times, each framed and
    captioned with the judge's verdict (green "right", red "wrong": what it read instead)."""
    from zsampling.shapes.judge import judge

    side, pad, label_w, head_h, caption = 32 * scale, 4, 260, 30, 26
    group_w = show * (side + pad)
    img = Image.new(
        "RGB",
        (
            label_w + len(arms) * (group_w + 14),
            head_h + len(testbed.prompts) * (side + caption + pad),
        ),
        "white",
    )
    draw = ImageDraw.Draw(img)
    model = testbed.model()
    for g, arm in enumerate(arms):
        x0 = label_w + g * (group_w + 14)
        draw.text((x0, 8), arm.label, fill="black")
        for r, prompt in enumerate(testbed.prompts):
            rows = [r * testbed.items_per_prompt + s for s in range(show)]
            for s, tile in enumerate(model.decode(latents[arm.key][rows])):
                x, y = x0 + s * (side + pad), head_h + r * (side + caption + pad)
                verdict = judge(np.asarray(tile.convert("RGB")), prompt)
                colour = "green" if verdict.right else "red"
                img.paste(tile.resize((side, side), Image.Resampling.NEAREST), (x, y))
                draw.rectangle((x - 1, y - 1, x + side, y + side), outline=colour, width=2)
                seen = ", ".join(f"{t.colour} {t.shape}" for t in verdict.seen[:2]) or "nothing"
                draw.text((x, y + side + 2), "right" if verdict.right else "wrong", fill=colour)
                draw.text((x, y + side + 13), seen[:22], fill="black")
    for r, prompt in enumerate(testbed.prompts):
        draw.text((4, head_h + r * (side + caption + pad) + side // 2), f'"{prompt}"', fill="black")
    return img


def run_demo(
    out: Path,
    *,
    testbed_name: str = "pairs",
    items_per_prompt: int = 12,
    steps: int | None = None,
    guidance: float | None = None,
    console: Console,
) -> list[Arm]:
    """The demo on one testbed; writes ``comparison.png`` to ``out``."""
    testbed = demo_testbed(testbed_name, items_per_prompt)
    steps = steps or testbed.steps
    guidance = testbed.guidance if guidance is None else guidance
    testbed.steps = steps
    arms = demo_arms(testbed, guidance, steps)
    keep = {arm.key: arm.latents for arm in arms if arm.latents is not None}
    real = real_arm(testbed)
    print_table(testbed, arms, real, console)
    shown = [a for a in arms if a.key in ("standard", "zigzag", "double")]
    grid = None
    if testbed.model().latent_shape()[0] == 1:  # images: a grid a person can read
        grid = sample_grid(testbed, shown, keep)
    elif testbed.name == "shapes":  # latents: decoded, framed with the judge's verdict
        grid = shapes_grid(testbed, shown, keep)
    if grid is not None:
        png = out / "comparison.png"
        atomic_write(png, lambda p: grid.save(p, format="PNG"))
        console.print(
            f"wrote {png}: rows are prompts, column groups are arms, the same noise in each"
        )
    return arms
