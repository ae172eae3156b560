"""Measure how much Z-Sampling's three inversion modes differ, on the analytic model.

Run from the repository root::

    python docs/scripts/inversion_modes.py

It prints the Markdown tables pasted into ``docs/concepts.md`` ("How much the modes differ");
``tests/test_docs.py`` reruns it and fails when a printed row is missing from that page. Everything
is seeded per item, so a rerun prints the same numbers.

Setup: the demo mixture (three overlapping classes in 2-D), 300 items (100 per class; item ``k``
uses seed ``k``), a uniform 25-step DDIM schedule on Stable Diffusion's training grid, zigzag with
its defaults (``inversion_guidance = 0``, ``zigzag_steps = T - 1``, one round).

- *alignment*: the exact posterior ``p(requested class | x)`` of the final latent, averaged;
- *log p(x)*: the exact (unconditional) log-density of the final latent, averaged;
- *win rate*: fraction of items whose alignment beats standard sampling's on the same seed;
- *guided calls*: guided model evaluations per item.

Besides standard sampling at the same guidance it runs the three baselines of a fair comparison:
standard sampling with as many steps as zigzag makes guided calls (3T - 2), standard sampling at
twice the guidance (the scale one zigzag round acts like to first order when
``inversion_guidance = 0``), and standard sampling at the scale that reaches the same alignment
(found on a grid of scales, interpolated linearly).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from zsampling import Standard, Uniform, Zigzag, sample
from zsampling.adapters.analytic import AnalyticModel, demo_mixture
from zsampling.core.sampler import ReflectiveSampler

STEPS = 25
ITEMS = 300
GUIDANCES = (2.0, 3.0)
MODES = ("official", "target", "source")
SWEEP = [1.0 + 0.1 * k for k in range(71)]  # standard CFG scales 1.0 .. 8.0


@dataclass
class Run:
    latents: Tensor
    alignment: Tensor  # per item
    log_density: Tensor  # per item
    guided_calls: int


def main() -> None:
    model = AnalyticModel(demo_mixture())
    prompts = ["red", "green", "blue"] * (ITEMS // 3)
    labels = model.encode(prompts)[0]["label"]
    rows = torch.arange(ITEMS)

    def run(sampler: ReflectiveSampler, steps: int = STEPS) -> Run:
        result = sample(
            model, sampler, prompts=prompts, seeds=range(ITEMS), schedule=Uniform(steps=steps)
        )
        x = result.latents.to(torch.float64)
        post = model.mixture.class_posterior(x)[rows, labels]
        return Run(x, post, model.mixture.log_density(x), result.counter.guided_calls)

    def row(g: float, label: str, r: Run, base: Run | None) -> str:
        win = "-" if base is None else f"{(r.alignment > base.alignment).double().mean():.3f}"
        return (
            f"| {g:g} | {label} | {r.alignment.mean():.4f} | {win} | "
            f"{r.log_density.mean():.4f} | {r.guided_calls} |"
        )

    sweep = [run(Standard(guidance=g)) for g in SWEEP]
    sweep_align = [float(r.alignment.mean()) for r in sweep]
    sweep_logp = [float(r.log_density.mean()) for r in sweep]

    def at_equal_alignment(target: float) -> tuple[float, float]:
        """Standard CFG's (scale, mean log p) where its mean alignment equals ``target``."""
        for k in range(len(SWEEP) - 1):
            a0, a1 = sweep_align[k], sweep_align[k + 1]
            if a0 <= target <= a1:
                w = (target - a0) / (a1 - a0)
                scale = SWEEP[k] + w * (SWEEP[k + 1] - SWEEP[k])
                return scale, sweep_logp[k] + w * (sweep_logp[k + 1] - sweep_logp[k])
        raise ValueError(f"alignment {target} outside the sweep")

    print(f"T = {STEPS}, {ITEMS} items, inversion_guidance = 0, zigzag_steps = T - 1\n")
    print("| guidance | sampler | alignment | win rate vs standard | log p(x) | guided calls |")
    print("|---:|---|---:|---:|---:|---:|")
    diffs, equal = [], []
    for g in GUIDANCES:
        std = run(Standard(guidance=g))
        same_cost = run(Standard(guidance=g), 3 * STEPS - 2)
        double = run(Standard(guidance=2 * g))
        print(row(g, "standard", std, None))
        print(row(g, f"standard, {3 * STEPS - 2} steps (equal cost)", same_cost, std))
        print(row(g, f"standard at 2 x guidance ({2 * g:g})", double, std))
        zig = {mode: run(Zigzag(guidance=g, inversion=mode)) for mode in MODES}
        for mode in MODES:
            print(row(g, f"zigzag `{mode}`", zig[mode], std))
            align = float(zig[mode].alignment.mean())
            equal.append((g, mode, align, *at_equal_alignment(align), zig[mode]))

        def gap(a: Run, b: Run) -> float:
            return float((a.latents - b.latents).abs().max())

        diffs.append(
            (
                g,
                gap(zig["official"], zig["target"]),
                gap(zig["source"], zig["target"]),
                gap(zig["official"], zig["source"]),
                gap(zig["target"], std),
                gap(zig["target"], double),
            )
        )

    print("\nMax abs difference of the final latents (same seeds):\n")
    print(
        "| guidance | official vs target | source vs target | official vs source | "
        "target vs standard | target vs standard at 2 x guidance |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for g, *d in diffs:
        print(f"| {g:g} | " + " | ".join(f"{v:.4f}" for v in d) + " |")

    print("\nStandard CFG at the scale that reaches the same alignment (25 steps):\n")
    print(
        "| guidance | zigzag mode | alignment | standard scale | standard log p(x) | "
        "zigzag log p(x) |"
    )
    print("|---:|---|---:|---:|---:|---:|")
    for g, mode, align, scale, logp, r in equal:
        print(
            f"| {g:g} | `{mode}` | {align:.4f} | {scale:.2f} | {logp:.4f} | "
            f"{r.log_density.mean():.4f} |"
        )


if __name__ == "__main__":
    main()
