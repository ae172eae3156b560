"""Running a validated config: load the models once, then every (prompt, seed) item."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from zsampling.adapters.base import ModelAdapter
from zsampling.config import ModelSpec, RunConfig
from zsampling.guidance import EvaluationCounter
from zsampling.observers import Observer, StepEvent
from zsampling.outputs import append_manifest, save_output, slug
from zsampling.sampling import sample

MANIFEST = "manifest.jsonl"


@dataclass(frozen=True)
class RunItem:
    """One output of a run: a prompt with a seed, and where it goes (without suffix)."""

    index: int
    prompt: str
    seed: int
    output_stem: Path


@dataclass
class ItemResult:
    item: RunItem
    latents: torch.Tensor | None
    path: Path | None
    metrics: dict[str, float] = field(default_factory=dict)
    counter: EvaluationCounter = field(default_factory=EvaluationCounter)
    seconds: float = 0.0
    skipped: bool = False


def plan_items(config: RunConfig) -> list[RunItem]:
    """Every (prompt, seed) pair of the run, in a stable order with stable file names."""
    run = config.run
    out = Path(run.output)
    if run.pairing == "zip":
        pairs = list(zip(run.prompts, run.seeds, strict=True))
    else:
        pairs = [(p, s) for p in run.prompts for s in run.seeds]
    return [RunItem(i, p, s, out / f"{i:04d}-{slug(p)}-seed{s}") for i, (p, s) in enumerate(pairs)]


def load_model(spec: ModelSpec) -> ModelAdapter:
    """Load an adapter, then apply its patches in config order."""
    model: ModelAdapter = spec.adapter.load()
    for patch in spec.patches:
        model = patch.apply(model)
    return model


def existing_output(item: RunItem) -> Path | None:
    for suffix in (".png", ".safetensors"):
        candidate = item.output_stem.with_suffix(suffix)
        if candidate.exists():
            return candidate
    return None


ProgressFactory = Callable[[RunItem, int], Observer]


def execute(
    config: RunConfig,
    *,
    overwrite: bool = False,
    progress: ProgressFactory | None = None,
    metadata: dict[str, Any] | None = None,
    items: Sequence[RunItem] | None = None,
) -> list[ItemResult]:
    """Run every item of ``config``; outputs that exist are kept unless ``overwrite``."""
    items = plan_items(config) if items is None else items
    resolved = config.as_dict()
    todo = [it for it in items if overwrite or existing_output(it) is None]
    results = [
        ItemResult(it, None, existing_output(it), skipped=True) for it in items if it not in todo
    ]
    if not todo:
        return results
    model = load_model(config.model)
    extra = {name: load_model(spec) for name, spec in config.models.items()}
    out_dir = Path(config.run.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    negative = [config.run.negative_prompt] if config.run.negative_prompt else None
    steps = int(config.schedule.steps)
    for item in todo:
        observers: list[Observer] = [o.bind(item) for o in config.observers]
        if progress is not None:
            observers.append(progress(item, steps))
        start = time.perf_counter()
        result = sample(
            model,
            config.sampler,
            prompts=[item.prompt],
            negative_prompts=negative,
            seeds=[item.seed],
            schedule=config.schedule,
            solver=config.solver,
            guider=config.guider,
            observers=observers,
            extra_models=extra,
        )
        seconds = time.perf_counter() - start
        scores = {
            m.name: float(m.score(model, result.latents, [item.prompt])[0]) for m in config.metrics
        }
        record = {
            "index": item.index,
            "prompt": item.prompt,
            "seed": item.seed,
            "config": resolved,
            "metrics": scores,
            "evaluations": result.counter.as_dict(),
            **(metadata or {}),
        }
        path = save_output(item.output_stem, model.decode(result.latents)[0], record)
        append_manifest(out_dir / MANIFEST, {"file": path.name, **record, "seconds": seconds})
        results.append(ItemResult(item, result.latents, path, scores, result.counter, seconds))
    return sorted(results, key=lambda r: r.item.index)


def progress_counter(callback: Callable[[int], None]) -> Callable[[StepEvent], None]:
    """An observer reporting the deepest level reached so far (zigzags do not move it back)."""
    deepest = 0

    def observe(event: StepEvent) -> None:
        nonlocal deepest
        if event.kind == "denoise" and event.dst > deepest:
            deepest = event.dst
            callback(deepest)

    return observe
