"""Running a validated config: check, load, check again, then every (prompt, seed) item.

The order is the point: nothing is written before everything that can be checked is.

1. **Before loading** (`zsampling.runs.checks`): the output folder (a folder, writable, no link or
   foreign entry where this run writes), outputs already there that the manifest does not list
   (they must carry this run's settings), and the devices the config names.
2. **Load** the models (each adapter, then its patches in config order), if anything is to be made.
3. **The check phase**, after loading and before the first item: every prompt encodes, every
   setting fits the model's dtype, the schedule makes valid levels for this model; all problems
   are reported together (exit code 2).
4. **Per item, under its claim** (`zsampling.runs.claims`): generate, check what each component
   returned (shape, dtype, finite), write the output atomically, append its manifest line. Items
   another run holds are done last, once their claim is free: kept if that run wrote them,
   generated if it died. (Batched generation slots in here: claim a batch, generate it, write each.)

Runs are resumable: an item whose output exists is kept (``--overwrite`` replaces the outputs that
existed when the run started), an output written just before a crash gets its manifest line back
from the settings embedded in it, and temporary files of killed writers are removed.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from zsampling.core.errors import (
    ComponentFault,
    NonFiniteLatents,
    RunFailure,
    ZSamplingError,
    one_line,
    shown,
)
from zsampling.core.events import Observer, StepEvent
from zsampling.core.files import UnsafePath, entry_kind
from zsampling.core.guidance import EvaluationCounter
from zsampling.core.model import ModelAdapter
from zsampling.core.path import MAIN
from zsampling.core.sampling import sample
from zsampling.core.version import VERSION
from zsampling.plugins.registry import Registry
from zsampling.runs.blame import Blame
from zsampling.runs.checks import check_devices, check_output_folder, model_issues, walk
from zsampling.runs.claims import claim
from zsampling.runs.config import ModelSpec, RunConfig
from zsampling.runs.distributed import Shard, current_shard
from zsampling.runs.fingerprint import folder_fingerprint
from zsampling.runs.issues import ConfigError
from zsampling.runs.outputs import (
    MANIFEST,
    append_manifest,
    compact_manifest,
    read_manifest,
    read_metadata,
    save_output,
    slug,
    sweep,
)

ADAPTER_MEMBERS = ("process", "dtype", "device", "latent_shape", "encode", "predict", "decode")


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


class ForeignFile(ZSamplingError):
    """A regular file with an output's name that this run did not write (exit code 2)."""

    def __init__(self, path: Path, why: str) -> None:
        self.path = path
        super().__init__(
            f"{path} has the name of an output of this run but {why}; zsampling does not "
            "overwrite files it did not write: move it away (or choose another run.output)"
        )


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


def load_model(spec: ModelSpec, blame: Blame | None = None) -> ModelAdapter:
    """Load an adapter, then apply its patches in config order.

    With ``blame``, an exception from the adapter's ``load`` or a patch's ``apply`` names that
    component and its plugin, and what each returns is checked to be a model adapter.
    """

    def stage(doing: str, kind: str, component: Any) -> Any:
        return blame.stage(doing, blame.of(kind, component)) if blame else nullcontext()

    with stage("loading the model", "adapter", spec.adapter):
        model: ModelAdapter = spec.adapter.load()
        _check_adapter(model, "adapter", spec.adapter.name, "load()")
    for patch in spec.patches:
        with stage("applying a patch", "patch", patch):
            model = patch.apply(model)
            _check_adapter(model, "patch", patch.name, "apply()")
    return model


def _check_adapter(model: Any, kind: str, name: str, call: str) -> None:
    missing = [m for m in ADAPTER_MEMBERS if not hasattr(model, m)]
    if missing:
        raise ComponentFault(
            kind,
            name,
            f"{call} returned a {type(model).__name__}, which is not a model adapter "
            f"(it lacks {', '.join(missing)})",
        )


def guard_predictions(model: ModelAdapter, spec: ModelSpec) -> None:
    """Check every prediction ``model`` makes where it is made: shaped like the ``x`` it was
    given. A wrong shape would otherwise fail (or be broadcast) inside the guider, far from the
    adapter (or its outermost patch) that returned it; this names the right component. Models
    whose attributes cannot be set are left as they are."""
    kind, name = (
        ("patch", spec.patches[-1].name) if spec.patches else ("adapter", spec.adapter.name)
    )
    predict = model.predict

    def checked(x: torch.Tensor, sigma: torch.Tensor, cond: Any) -> Any:
        pred = predict(x, sigma, cond)
        for part in ("x0", "eps"):
            value = getattr(pred, part, None)
            if not isinstance(value, torch.Tensor) or value.shape != x.shape:
                got = (
                    tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                )
                raise ComponentFault(
                    kind,
                    name,
                    f"predict() returned a prediction whose {part} is {got}; expected "
                    f"{tuple(x.shape)}, the shape of the x it was given",
                )
        return pred

    with suppress(AttributeError, TypeError):
        model.predict = checked  # type: ignore[method-assign]


def existing_output(item: RunItem) -> Path | None:
    """The item's output file if there is one (a link or folder in its place: `UnsafePath`)."""
    for suffix in (".png", ".safetensors"):
        candidate = item.output_stem.with_name(item.output_stem.name + suffix)
        kind = entry_kind(candidate)
        if kind == "file":
            return candidate
        if kind is not None:
            raise UnsafePath(candidate, kind)
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
    mine = shard.take(list(plan_items(config) if items is None else items))
    return _Run(config, registry, overwrite, progress).execute(mine, shard)


class _Run:
    """One execution: the checks, the models (loaded once, on first need) and the item loop."""

    def __init__(
        self,
        config: RunConfig,
        registry: Registry,
        overwrite: bool,
        progress: ProgressFactory | None,
    ) -> None:
        self.config = config
        self.registry = registry
        self.overwrite = overwrite
        self.progress = progress
        self.folder = Path(config.run.output)
        self.manifest = self.folder / MANIFEST
        self.method = method_id(config)
        self.blame = Blame(registry, config.guider)
        self.models: dict[str, ModelAdapter] = {}
        self.present: set[str] = set()  # output names there when the run started
        self.done: dict[str, dict[str, Any]] = {}  # the manifest when the run started

    # -- 1-3: checks, load, check phase -----------------------------------------------------

    def execute(self, items: list[RunItem], shard: Shard) -> list[ItemResult]:
        check_output_folder(self.folder, [i.output_stem.name for i in items])
        self.done = read_manifest(self.manifest)
        todo = []
        for item in items:
            found = existing_output(item)
            if found is None:
                todo.append(item)
                continue
            self.present.add(found.name)
            if found.name not in self.done:
                self._ours(found, item)  # refuse a foreign file before anything is loaded
            if self.overwrite:
                todo.append(item)
        if todo:
            self._load([i.prompt for i in todo])
        self.folder.mkdir(parents=True, exist_ok=True)
        if shard.is_main:
            sweep(self.folder)
        shard.barrier()
        results, deferred = [], []
        for item in items:
            with claim(self.folder, item.output_stem.name, wait=False) as held:
                if held:
                    results.append(self._settle(item))
                else:
                    deferred.append(item)
        for item in deferred:  # another run holds these: wait for it, then keep or make them
            with claim(self.folder, item.output_stem.name, wait=True):
                results.append(self._settle(item))
        shard.barrier()
        if shard.is_main:
            compact_manifest(self.manifest)
        return sorted(results, key=lambda r: r.item.index)

    def _load(self, prompts: list[str]) -> None:
        """Load every model of the run, then check the config against them (before any write)."""
        if self.models:
            return
        check_devices(self.config)
        specs = {MAIN: self.config.model, **self.config.models}
        for name, spec in specs.items():
            model = self.models[name] = load_model(spec, self.blame)
            outer = ("patch", spec.patches[-1]) if spec.patches else ("adapter", spec.adapter)
            self.blame.model_loaded(model, self.blame.of(*outer))
            guard_predictions(model, spec)
        issues = model_issues(self.config, self.models, prompts, self.blame)
        if issues:
            self.models.clear()
            raise ConfigError(issues, f"{self.config.source}, checked against the loaded model,")

    def _ours(self, path: Path, item: RunItem) -> dict[str, Any]:
        """The settings embedded in ``path``, checked to be this item's (`ForeignFile` if not)."""
        try:
            meta = read_metadata(path)
        except UnsafePath:
            raise
        except Exception as exc:
            raise ForeignFile(path, f"cannot be read as one ({one_line(exc)})") from None
        mine = (meta.get("method"), meta.get("prompt"), meta.get("seed"))
        if mine != (self.method, item.prompt, item.seed):
            what = "carries no zsampling settings" if not meta else "holds another item's settings"
            raise ForeignFile(path, what)
        return meta

    # -- 4: per item, under its claim -------------------------------------------------------

    def _settle(self, item: RunItem) -> ItemResult:
        """Keep the item's output (recovering its manifest line) or make it."""
        found = existing_output(item)
        replace = self.overwrite and found is not None and found.name in self.present
        if found is not None and not replace:
            if found.name not in self.done:  # written, but its manifest line was lost (or new)
                append_manifest(self.manifest, {"file": found.name, **self._ours(found, item)})
            return ItemResult(item, None, found, skipped=True)
        self._load([item.prompt])  # a no-op unless an item we deferred turned out to be ours
        return self._generate(item)

    def _generate(self, item: RunItem) -> ItemResult:
        config, blame, model = self.config, self.blame, self.models[MAIN]
        where = (
            f"generating {item.output_stem.name} (prompt {shown(item.prompt)}, seed {item.seed})"
        )
        observers: list[Observer] = []
        for o in config.observers:
            with blame.stage(where, blame.of("observer", o)):
                observers.append(o.bind(item))
        if self.progress is not None:
            observers.append(self.progress(item, int(config.schedule.steps)))
        start = time.perf_counter()
        with self._nonfinite(where), blame.stage(where, blame.of("sampler", config.sampler)):
            result = sample(
                model,
                config.sampler,
                prompts=[item.prompt],
                negative_prompts=[config.run.negative_prompt]
                if config.run.negative_prompt
                else None,
                seeds=[item.seed],
                schedule=config.schedule,
                solver=config.solver,
                guider=config.guider,
                observers=observers,
                extra_models={k: v for k, v in self.models.items() if k != MAIN},
            )
        scores = {m.name: self._score(m, result.latents, item, where) for m in config.metrics}
        with blame.stage(
            f"decoding {item.output_stem.name}", blame.of("adapter", config.model.adapter)
        ):
            decoded = model.decode(result.latents)[0]
        if not (isinstance(decoded, torch.Tensor) or callable(getattr(decoded, "save", None))):
            raise RunFailure(
                f"{blame.of('adapter', config.model.adapter)} decode() gave a "
                f"{type(decoded).__name__}; expected a PIL image or a tensor per item"
            )
        seconds = time.perf_counter() - start
        record = {
            "index": item.index,
            "prompt": item.prompt,
            "seed": item.seed,
            "metrics": scores,
            "evaluations": result.counter.as_dict(),
            **self._provenance(),
        }
        # Timing stays out of the file: the same settings must give byte-identical outputs.
        with _writing(item.output_stem):
            path = save_output(item.output_stem, decoded, record)
            append_manifest(
                self.manifest, {"file": path.name, **record, "seconds": round(seconds, 4)}
            )
        return ItemResult(item, result.latents, path, scores, result.counter, seconds)

    def _score(self, metric: Any, latents: torch.Tensor, item: RunItem, where: str) -> float:
        culprit = self.blame.of("metric", metric)
        with self.blame.stage(f"scoring while {where}", culprit):
            value = float(metric.score(self.models[MAIN], latents, [item.prompt])[0])
        if value != value or value in (float("inf"), float("-inf")):
            raise RunFailure(f"{culprit} returned the non-finite score {value} while {where}")
        return value

    def _provenance(self) -> dict[str, Any]:
        settings = self.config.as_dict()
        settings["run"].pop("output")  # where a file lies is not a setting of its content
        return {
            "method": self.method,
            "config": settings,
            "model": model_fingerprint(self.config.model),
            "versions": {"zsampling": VERSION}
            | {p.name: p.version for p in self.registry.plugins if not p.error},
        }

    @contextmanager
    def _nonfinite(self, where: str) -> Iterator[None]:
        """NaN latents: add the item and the settings that scale the model's output."""
        try:
            yield
        except NonFiniteLatents as exc:
            scales = [
                f"{path} = {value:g}"
                for path, value in _numbers(self.config.as_dict())
                if "guidance" in path.rpartition(".")[2] or path.endswith("scale")
            ]
            hint = f"; the run's guidance settings: {', '.join(scales)}" if scales else ""
            raise NonFiniteLatents(f"{exc} (while {where}{hint})") from exc


@contextmanager
def _writing(stem: Path) -> Iterator[None]:
    """A write that fails (disk full, permissions changed mid-run) as one paragraph, exit 1."""
    try:
        yield
    except OSError as err:
        raise RunFailure(
            f"could not write the output {stem.name} in {stem.parent}: {err.strerror or err}"
        ) from err


def _numbers(data: Any, where: str = "") -> Iterator[tuple[str, float]]:
    for path, value in walk(data, where):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            yield path, float(value)


def progress_counter(callback: Callable[[int], None]) -> Callable[[StepEvent], None]:
    """An observer reporting the deepest level reached so far (zigzags do not move it back)."""
    deepest = 0

    def observe(event: StepEvent) -> None:
        nonlocal deepest
        if event.kind == "denoise" and event.dst > deepest:
            deepest = event.dst
            callback(deepest)

    return observe
