"""``zsampling eval``: a method against standard sampling, fairly (see the evaluation protocol).

Three comparisons, all paired on the same (prompt, seed) items and initial noise:

1. **equal guidance**: standard sampling at the method's guidance and steps;
2. **equal model evaluations**: standard sampling with as many guided calls as the method used
   (more steps);
3. **calibrated guidance**: standard sampling at the CFG scale that reaches the method's mean
   alignment, found by a sweep over scales and linear interpolation, then run for real.

The first metric of the config is the alignment (what wins are counted on), the second, if any,
the fidelity. Results go to ``results.json`` and a plot of alignment against fidelity per scale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from zsampling.core.errors import InvalidArgument
from zsampling.core.sampling import sample
from zsampling.evaluation.stats import wilson
from zsampling.runs.config import RunConfig
from zsampling.runs.outputs import atomic_write
from zsampling.runs.run import load_model, plan_items
from zsampling.samplers import ReflectiveSampler, Standard


@dataclass
class Outcome:
    label: str
    guidance: float
    steps: int
    scores: dict[str, np.ndarray]
    guided_calls_per_item: float

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "guidance": self.guidance,
            "steps": self.steps,
            "guided_calls_per_item": self.guided_calls_per_item,
            "means": {k: float(v.mean()) for k, v in self.scores.items()},
        }


class Evaluation:
    """Runs arms of one config on the same items; see the module docstring."""

    def __init__(self, config: RunConfig) -> None:
        if not config.metrics:
            raise InvalidArgument(
                "metrics",
                [],
                "at least one [[metrics]] (the first is the alignment, the second the fidelity)",
            )
        self.config = config
        self.items = plan_items(config)
        self.model = load_model(config.model)
        self.extra = {n: load_model(s) for n, s in config.models.items()}
        self.prompts = [it.prompt for it in self.items]
        self.seeds = [it.seed for it in self.items]

    def run(self, label: str, sampler: ReflectiveSampler, steps: int) -> Outcome:
        schedule = self.config.schedule.model_copy(update={"steps": steps})
        negative = (
            [self.config.run.negative_prompt] * len(self.prompts)
            if self.config.run.negative_prompt
            else None
        )
        res = sample(
            self.model,
            sampler,
            prompts=self.prompts,
            negative_prompts=negative,
            seeds=self.seeds,
            schedule=schedule,
            solver=self.config.solver,
            guider=self.config.guider,
            extra_models=self.extra,
        )
        scores = {
            m.name: m.score(self.model, res.latents, self.prompts).double().numpy()
            for m in self.config.metrics
        }
        # The batch shares every call, so calls per item equal calls of the batched run.
        return Outcome(
            label,
            float(getattr(sampler, "guidance", float("nan"))),
            steps,
            scores,
            float(res.counter.guided_calls),
        )


def paired(method: Outcome, base: Outcome) -> dict[str, Any]:
    out = {}
    for name, values in method.scores.items():
        wins = int((values > base.scores[name]).sum())
        ties = int((values == base.scores[name]).sum())
        lo, hi = wilson(wins, len(values))
        out[name] = {
            "win_rate": wins / len(values),
            "ci95": [lo, hi],
            "ties": ties,
            "mean_difference": float((values - base.scores[name]).mean()),
        }
    return out


def calibrate(sweep: list[Outcome], target: float, metric: str) -> float:
    """The CFG scale at which the sweep's mean alignment reaches ``target`` (interpolated)."""
    xs = np.array([o.guidance for o in sweep])
    ys = np.array([o.scores[metric].mean() for o in sweep])
    order = np.argsort(xs)
    xs, ys = xs[order], ys[order]
    ys = np.maximum.accumulate(ys)  # alignment rises with scale; flatten sampling noise
    if target >= ys[-1]:
        return float(xs[-1])
    if target <= ys[0]:
        return float(xs[0])
    k = int(np.searchsorted(ys, target))
    t = (target - ys[k - 1]) / max(ys[k] - ys[k - 1], 1e-12)
    return float(xs[k - 1] + t * (xs[k] - xs[k - 1]))


def evaluate(config: RunConfig, scales: list[float], out: Path) -> dict[str, Any]:
    """The three comparisons; writes ``results.json`` and ``alignment_fidelity.png``."""
    ev = Evaluation(config)
    metric = config.metrics[0].name
    steps = int(config.schedule.steps)
    guidance = float(getattr(config.sampler, "guidance", 1.0))
    method = ev.run(f"{config.sampler.name}", config.sampler, steps)
    equal_guidance = ev.run("standard, equal guidance", Standard(guidance=guidance), steps)
    equal_steps = max(steps, round(method.guided_calls_per_item))
    equal_cost = ev.run(
        f"standard, {equal_steps} steps (equal evaluations)",
        Standard(guidance=guidance),
        equal_steps,
    )
    sweep = [ev.run(f"standard, guidance {s:g}", Standard(guidance=s), steps) for s in scales]
    scale = calibrate(sweep, float(method.scores[metric].mean()), metric)
    calibrated = ev.run(
        f"standard, calibrated guidance {scale:.3g}", Standard(guidance=scale), steps
    )
    baselines = [equal_guidance, equal_cost, calibrated]
    results = {
        "items": len(ev.items),
        "alignment_metric": metric,
        "method": method.summary(),
        "baselines": [{**b.summary(), "method_vs_baseline": paired(method, b)} for b in baselines],
        "sweep": [o.summary() for o in sweep],
    }
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2)
    atomic_write(out / "results.json", lambda p: p.write_text(text, encoding="utf-8"))
    names = list(method.scores)
    if len(names) > 1:
        png = plot(sweep, method, names[0], names[1])
        atomic_write(out / "alignment_fidelity.png", lambda p: png.save(p, format="PNG"))
    return results


def plot(
    sweep: list[Outcome], method: Outcome, x_name: str, y_name: str, size: int = 480
) -> Image.Image:
    """Mean alignment (x) against mean fidelity (y): the CFG sweep as a line, the method a dot."""
    pts = [(o.scores[x_name].mean(), o.scores[y_name].mean(), f"{o.guidance:g}") for o in sweep]
    mx, my = method.scores[x_name].mean(), method.scores[y_name].mean()
    xs = [p[0] for p in pts] + [mx]
    ys = [p[1] for p in pts] + [my]
    pad = 50
    x0, x1 = min(xs), max(xs) + 1e-9
    y0, y1 = min(ys), max(ys) + 1e-9

    def at(x: float, y: float) -> tuple[float, float]:
        return (
            pad + (x - x0) / (x1 - x0) * (size - 2 * pad),
            size - pad - (y - y0) / (y1 - y0) * (size - 2 * pad),
        )

    img = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(img)
    d.rectangle([pad, pad, size - pad, size - pad], outline=(160, 160, 160))
    d.text((pad, size - pad + 20), f"{x_name} ({x0:.3f} .. {x1:.3f})", fill=(0, 0, 0))
    d.text((4, 8), f"{y_name} ({y0:.3f} .. {y1:.3f})", fill=(0, 0, 0))
    d.line([at(x, y) for x, y, _ in pts], fill=(38, 110, 210), width=2)
    for x, y, lab in pts:
        px, py = at(x, y)
        d.ellipse([px - 3, py - 3, px + 3, py + 3], fill=(38, 110, 210))
        d.text((px + 5, py - 12), f"cfg {lab}", fill=(38, 110, 210))
    px, py = at(mx, my)
    d.ellipse([px - 5, py - 5, px + 5, py + 5], fill=(220, 50, 47))
    d.text((px + 7, py + 2), method.label, fill=(220, 50, 47))
    return img
