"""Running a validated config: load the models once, then every (prompt, seed) item.

Runs are resumable: an item whose output exists is skipped (``--overwrite`` replaces it), an output
that was written but whose manifest line was lost to a crash gets its line back from the metadata
embedded in the file, and temporary files of an interrupted write are removed.
"""

from __future__ import annotations

import hashlib
import json
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from zsampling.core.errors import RunFailure, ZSamplingError
from zsampling.core.events import Observer, StepEvent
from zsampling.core.guidance import EvaluationCounter
from zsampling.core.model import ModelAdapter
from zsampling.core.sampling import sample
from zsampling.core.version import VERSION
from zsampling.plugins.registry import Registry
from zsampling.runs.config import ModelSpec, RunConfig
from zsampling.runs.distributed import Shard, current_shard
from zsampling.runs.fingerprint import folder_fingerprint
from zsampling.runs.outputs import (
    append_manifest,
    compact_manifest,
    read_manifest,
    read_metadata,
    remove_stale_temporaries,
    save_output,
    slug,
)

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


def _digest(data: Any, n: int) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:n]


def method_id(config: RunConfig) -> str:
    """Identifies everything but the ``[run]`` table: two methods never share an output name."""
    resolved = config.as_dict()
    resolved.pop("run")
    return f"{config.sampler.name}-{_digest(resolved, 8)}"


def plan_items(config: RunConfig) -> list[RunItem]:
    """Every (prompt, seed) pair of the run, with stable, method-specific file names."""
    run = config.run
    out = Path(run.output)
    if run.pairing == "zip":
        pairs = list(zip(run.prompts, run.seeds, strict=True))
    else:
        pairs = [(p, s) for p in run.prompts for s in run.seeds]
    method = method_id(config)
    return [
        RunItem(i, p, s, out / f"{slug(p)}-{_digest(p, 6)}-seed{s}-{method}")
        for i, (p, s) in enumerate(pairs)
    ]


def load_model(spec: ModelSpec) -> ModelAdapter:
    """Load an adapter, then apply its patches in config order."""
    model: ModelAdapter = spec.adapter.load()
    for patch in spec.patches:
        model = patch.apply(model)
    return model


def existing_output(item: RunItem) -> Path | None:
    for suffix in (".png", ".safetensors"):
        candidate = item.output_stem.with_name(item.output_stem.name + suffix)
        if candidate.exists():
            return candidate
    return None


def model_fingerprint(spec: ModelSpec) -> str:
    """Which weights made an output: the adapter's own fingerprint, else a hash of the folder its
    ``folder()`` or ``path`` names (file names, sizes, first and last MiB), else of its settings;
    patches that read folders (``unet-weights``, ``lora``) add theirs."""

    def of(component: Any) -> str:
        own = getattr(component, "fingerprint", None)
        if callable(own):
            return str(own())
        folder_of = getattr(component, "folder", None)  # a resolved folder (digits, unet-weights)
        folder = folder_of() if callable(folder_of) else getattr(component, "path", None)
        if isinstance(folder, (str, Path)) and Path(folder).expanduser().is_dir():
            return f"{component.name}:{folder_fingerprint(Path(folder).expanduser())}"
        return f"{component.name}:{_digest(component.model_dump(mode='json'), 16)}"

    return "+".join([of(spec.adapter), *(of(p) for p in spec.patches)])


ProgressFactory = Callable[[RunItem, int], Observer]


def execute(
    config: RunConfig,
    *,
    overwrite: bool = False,
    progress: ProgressFactory | None = None,
    items: Sequence[RunItem] | None = None,
    registry: Registry | None = None,
    shard: Shard | None = None,
) -> list[ItemResult]:
    """Run this process's share of ``config``; existing outputs are kept unless ``overwrite``."""
    shard = shard or current_shard()
    if registry is None:
        from zsampling.plugins.manager import default_registry

        registry = default_registry()
    items = shard.take(list(plan_items(config) if items is None else items))
    out_dir = Path(config.run.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / MANIFEST
    if shard.is_main:
        remove_stale_temporaries(out_dir)
    shard.barrier()
    done = read_manifest(manifest)
    results, todo = [], []
    for item in items:
        found = existing_output(item)
        if found is None or overwrite:
            todo.append(item)
            continue
        if found.name not in done:  # written, but the run died before its manifest line
            append_manifest(manifest, {"file": found.name, **read_metadata(found)})
        results.append(ItemResult(item, None, found, skipped=True))
    if todo:
        results += _generate(config, todo, manifest, progress, registry)
    shard.barrier()
    if shard.is_main:
        compact_manifest(manifest)
    return sorted(results, key=lambda r: r.item.index)


def _generate(
    config: RunConfig,
    todo: list[RunItem],
    manifest: Path,
    progress: ProgressFactory | None,
    registry: Registry,
) -> list[ItemResult]:
    model = load_model(config.model)
    extra = {name: load_model(spec) for name, spec in config.models.items()}
    negative = [config.run.negative_prompt] if config.run.negative_prompt else None
    steps = int(config.schedule.steps)
    settings = config.as_dict()
    settings["run"].pop("output")  # where a file lies is not a setting of its content
    provenance = {
        "method": method_id(config),
        "config": settings,
        "model": model_fingerprint(config.model),
        "versions": {"zsampling": VERSION}
        | {p.name: p.version for p in registry.plugins if not p.error},
    }
    results = []
    for item in todo:
        observers: list[Observer] = [o.bind(item) for o in config.observers]
        if progress is not None:
            observers.append(progress(item, steps))
        start = time.perf_counter()
        try:
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
            scores = {
                m.name: float(m.score(model, result.latents, [item.prompt])[0])
                for m in config.metrics
            }
            decoded = model.decode(result.latents)[0]
        except ZSamplingError:
            raise
        except Exception as exc:
            raise _explain(exc, item, config, registry) from exc
        seconds = time.perf_counter() - start
        record = {
            "index": item.index,
            "prompt": item.prompt,
            "seed": item.seed,
            "metrics": scores,
            "evaluations": result.counter.as_dict(),
            **provenance,
        }
        # Timing stays out of the file: the same settings must give byte-identical outputs.
        path = save_output(item.output_stem, decoded, record)
        append_manifest(manifest, {"file": path.name, **record, "seconds": round(seconds, 4)})
        results.append(ItemResult(item, result.latents, path, scores, result.counter, seconds))
    return results


def _explain(
    exc: BaseException, item: RunItem, config: RunConfig, registry: Registry
) -> RunFailure:
    """Turn an unexpected failure into a message naming what to do, or which plugin failed."""
    where = f"while generating {item.output_stem.name} (prompt {item.prompt!r}, seed {item.seed})"
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or "out of memory" in str(exc):
        return RunFailure(
            f"out of memory {where} ({text}). Lower the resolution or the number of rows per "
            "call (guider.skip_unused_branches = true), use dtype = 'float16' or 'bfloat16', "
            "or free the device for this run."
        )
    modules = {
        c.cls.__module__.split(".")[0]: c
        for k in registry.components.values()
        for c in k.values()
        if c.plugin != "zsampling"
    }
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        for package, comp in modules.items():
            if f"/{package}/" in frame.filename or frame.filename.endswith(f"/{package}.py"):
                return RunFailure(
                    f"plugin {comp.plugin!r} ({comp.kind} {comp.name!r}) failed {where}: {text}"
                )
    return RunFailure(f"sampling failed {where}: {text}")


def progress_counter(callback: Callable[[int], None]) -> Callable[[StepEvent], None]:
    """An observer reporting the deepest level reached so far (zigzags do not move it back)."""
    deepest = 0

    def observe(event: StepEvent) -> None:
        nonlocal deepest
        if event.kind == "denoise" and event.dst > deepest:
            deepest = event.dst
            callback(deepest)

    return observe
