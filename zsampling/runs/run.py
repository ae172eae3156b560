"""Running a validated config: check, load, check again, then every (prompt, seed) item.

The order is the point: nothing is written before everything that can be checked is.

1. **Before loading** (`zsampling.runs.checks`): the output folder (a folder, writable, no link or
   foreign entry where this run writes), outputs already there that the manifest does not list
   (they must carry this run's settings), and the devices the config names.
2. **Load** the models (each adapter, then its patches in config order), if anything is to be made.
3. **The check phase**, after loading and before the first item: every prompt encodes, every
   setting fits the model's dtype, the schedule makes valid levels for this model; all problems
   are reported together (exit code 2).
4. **Per batch, each item under its claim** (`zsampling.runs.claims`): ``run.batch_size`` items
   are sampled together (`zsampling.runs.batches`: the batches are cut from the plan at fixed
   places, so an item's bytes never depend on which others exist or which process makes it);
   what each component returned is checked (shape, dtype, finite); then each item is decoded on
   its own, written atomically and given its manifest line. Items another run holds are done
   last, once their claim is free: kept if that run wrote them, generated if it died.

Runs are resumable: an item whose output exists is kept (``--overwrite`` replaces the outputs that
existed when the run started), an output written just before a crash gets its manifest line back
from the settings embedded in it, and temporary files of killed writers are removed.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from functools import cached_property
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
from zsampling.core.sampler import guidance_scales
from zsampling.core.sampling import SampleResult, sample
from zsampling.core.search import search_sample
from zsampling.core.version import VERSION
from zsampling.plugins.registry import Registry
from zsampling.runs import stopping
from zsampling.runs.backoff import halved, is_out_of_memory
from zsampling.runs.batches import Batch, plan_batches
from zsampling.runs.blame import Blame
from zsampling.runs.checks import check_devices, check_output_folder, model_issues
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
ModelLoader = Callable[[ModelSpec, Blame], ModelAdapter]
"""How a run gets each model: `load_model` by default; a caller that runs several configs on
one model (``zsampling compare``'s cells) passes a loader that hands the loaded model back."""


def execute(
    config: RunConfig,
    *,
    overwrite: bool = False,
    progress: ProgressFactory | None = None,
    items: Sequence[RunItem] | None = None,
    registry: Registry | None = None,
    shard: Shard | None = None,
    load: ModelLoader = load_model,
) -> list[ItemResult]:
    """Run this process's share of ``config``; existing outputs are kept unless ``overwrite``."""
    shard = shard or current_shard()
    if registry is None:
        from zsampling.plugins.manager import default_registry

        registry = default_registry()
    plan = plan_items(config)
    batches = plan_batches(plan, config.run.batch_size, plan if items is None else items)
    run = _Run(config, registry, overwrite, progress, load, plan)
    return run.execute(shard.take(batches), shard)


class _Run:
    """One execution: the checks, the models (loaded once, on first need) and the item loop."""

    def __init__(
        self,
        config: RunConfig,
        registry: Registry,
        overwrite: bool,
        progress: ProgressFactory | None,
        load: ModelLoader = load_model,
        plan: Sequence[RunItem] = (),
    ) -> None:
        self.config = config
        self.plan = plan or plan_items(config)
        self.fits: int | None = None  # the batch size that fits, once a batch did not
        self.load = load
        self.registry = registry
        self.overwrite = overwrite
        self.progress = progress
        self.folder = Path(config.run.output)
        self.manifest = self.folder / MANIFEST
        self.method = method_id(config)
        self.blame = Blame(registry)
        self.models: dict[str, ModelAdapter] = {}
        self.present: set[str] = set()  # output names there when the run started
        self.done: dict[str, dict[str, Any]] = {}  # the manifest when the run started

    # -- 1-3: checks, load, check phase -----------------------------------------------------

    def execute(self, batches: list[Batch[RunItem]], shard: Shard) -> list[ItemResult]:
        items = [item for batch in batches for item in batch.wanted]
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
            making = {i.index for i in todo}
            self._load([r.prompt for b in batches if making & _indices(b) for r in b.rows])
        self.folder.mkdir(parents=True, exist_ok=True)
        if shard.is_main:
            sweep(self.folder)
        shard.barrier()
        results: list[ItemResult] = []
        deferred: list[tuple[Batch[RunItem], RunItem]] = []
        for batch in batches:
            with ExitStack() as claims:
                held = []
                for item in batch.wanted:
                    if claims.enter_context(claim(self.folder, item.output_stem.name, False)):
                        held.append(item)
                    else:
                        deferred.append((batch, item))
                results += self._settle(batch, held)
        for batch, item in deferred:  # another run holds these: wait, then keep or make them
            with claim(self.folder, item.output_stem.name, wait=True):
                results += self._settle(batch, [item])
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
            model = self.models[name] = self.load(spec, self.blame)
            outer = ("patch", spec.patches[-1]) if spec.patches else ("adapter", spec.adapter)
            self.blame.model_loaded(model, self.blame.of(*outer), name)
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

    def _settle(self, batch: Batch[RunItem], held: list[RunItem]) -> list[ItemResult]:
        """Keep each held item's output (recovering its manifest line) or make it; the items to
        make are made together, by sampling their whole batch."""
        kept, make = [], []
        for item in held:
            found = existing_output(item)
            replace = self.overwrite and found is not None and found.name in self.present
            if found is not None and not replace:
                if found.name not in self.done:  # written, but its manifest line was lost (or new)
                    append_manifest(self.manifest, {"file": found.name, **self._ours(found, item)})
                kept.append(ItemResult(item, None, found, skipped=True))
            else:
                make.append(item)
        if not make:
            return kept
        self._load([r.prompt for r in batch.rows])  # a no-op unless a deferred item is ours
        return kept + self._generate(batch, make)

    def _generate(self, batch: Batch[RunItem], make: list[RunItem]) -> list[ItemResult]:
        """`_generate_batch` at the batch size that fits: a batch that runs out of memory while
        sampling is made again in halves (`zsampling.runs.backoff`)."""
        if self.fits is not None:  # cut where a run at that size cuts (odd sizes move the cuts)
            cuts = plan_batches(self.plan, self.fits, make)
            if [c.rows for c in cuts] != [batch.rows]:
                return [r for c in cuts for r in self._generate(c, list(c.wanted))]
        try:
            return self._generate_batch(batch, make)
        except _OutOfMemory:
            self.fits = halved(len(batch.rows), str(self.models[MAIN].device))
            return self._generate(batch, make)

    def _generate_batch(self, batch: Batch[RunItem], make: list[RunItem]) -> list[ItemResult]:
        """Sample ``batch``'s rows in one call, then score, decode and write the items of
        ``make`` (the other rows' outputs exist or belong to another process)."""
        config, blame, model = self.config, self.blame, self.models[MAIN]
        rows = batch.rows
        where = f"generating {_named(rows)}"
        per_item: dict[int, list[Observer]] = {}
        for item in make:
            watching = per_item[rows.index(item)] = []
            for o in config.observers:
                with blame.stage(where, blame.of("observer", o)):
                    watching.append(o.bind(item))
            if self.progress is not None:
                watching.append(self.progress(item, int(config.schedule.steps)))
        start = time.perf_counter()
        negative = config.run.negative_prompt
        sampler = blame.of("sampler", config.sampler)
        options: dict[str, Any] = {
            "prompts": [r.prompt for r in rows],
            "negative_prompts": [negative] * len(rows) if negative else None,
            "seeds": [r.seed for r in rows],
            "schedule": config.schedule,
            "solver": config.solver,
            "guider": config.guider,
            "extra_models": {k: v for k, v in self.models.items() if k != MAIN},
        }
        searches: list[dict[str, Any]] = []
        with _backoff(len(rows)), self._nonfinite(where), blame.stage(where, sampler):
            if config.search is None:
                observers = [RowObservers(per_item)] if per_item else []
                result = sample(model, config.sampler, observers=observers, **options)
            else:
                result, searches = self._search(options, where)
        scores = {m.name: self._score(m, result.latents, rows, where) for m in config.metrics}
        share = (time.perf_counter() - start) / len(rows)
        counter = per_item_counter(result.counter, len(rows))
        made = []
        for item in make:
            k = rows.index(item)
            begin = time.perf_counter()
            latents = result.latents[k : k + 1]
            with blame.stage(
                f"decoding {item.output_stem.name}", blame.of("adapter", config.model.adapter)
            ):
                decoded = model.decode(latents)[0]
            if not (isinstance(decoded, torch.Tensor) or callable(getattr(decoded, "save", None))):
                raise RunFailure(
                    f"{blame.of('adapter', config.model.adapter)} decode() gave a "
                    f"{type(decoded).__name__}; expected a PIL image or a tensor per item"
                )
            item_scores = {name: values[k] for name, values in scores.items()}
            record = {
                "index": item.index,
                "prompt": item.prompt,
                "seed": item.seed,
                "metrics": item_scores,
                "evaluations": counter.as_dict(),
                **({"search": searches[k]} if searches else {}),
                **self._made_with(),
            }
            seconds = share + time.perf_counter() - begin
            # Timing stays out of the file: the same settings must give byte-identical outputs.
            with stopping.writing(), _writing(item.output_stem):
                path = save_output(item.output_stem, decoded, record)
                append_manifest(
                    self.manifest, {"file": path.name, **record, "seconds": round(seconds, 4)}
                )
            made.append(ItemResult(item, latents, path, item_scores, counter, seconds))
        return made

    def _search(
        self, options: dict[str, Any], where: str
    ) -> tuple[SampleResult, list[dict[str, Any]]]:
        """The batch searched over starting noises (``[search]``): its chosen latents as a
        sample's result, and each item's search record. Candidates go ``run.batch_size`` rows to
        a model call; per-item observers are not given the candidates' steps."""
        search = self.config.search
        assert search is not None
        blame, model = self.blame, self.models[MAIN]
        strategy, verifier = search.strategy, search.verifier
        with blame.stage(where, blame.of("search", strategy)):
            found = search_sample(
                model,
                self.config.sampler,
                strategy,
                verifier,
                rows=self.fits or self.config.run.batch_size,
                **options,
            )
        return SampleResult(found.latents, torch.empty(0), found.counter), found.records

    def _score(
        self, metric: Any, latents: torch.Tensor, rows: Sequence[RunItem], where: str
    ) -> list[float]:
        """One finite score per row of the batch (the whole batch is scored, whatever is
        written, so a score does not depend on which outputs existed)."""
        culprit = self.blame.of("metric", metric)
        with self.blame.stage(f"scoring while {where}", culprit):
            raw = metric.score(self.models[MAIN], latents, [r.prompt for r in rows])
            values = [float(v) for v in raw]
        if len(values) != len(rows):
            raise RunFailure(
                f"{culprit} returned {len(values)} score(s) for a batch of {len(rows)} items "
                f"while {where}; expected one per item"
            )
        for value in values:
            if value != value or value in (float("inf"), float("-inf")):
                raise RunFailure(f"{culprit} returned the non-finite score {value} while {where}")
        return values

    @cached_property
    def _provenance(self) -> dict[str, Any]:
        """What made every item of this run, worked out once per run: it hashes the model's
        folder, a cost that does not depend on the item (docs/benchmarks.md, (e))."""
        settings = self.config.as_dict()
        settings["run"].pop("output")  # where a file lies is not a setting of its content
        return {
            "method": self.method,
            "config": settings,
            "model": model_fingerprint(self.config.model),
            "versions": {"zsampling": VERSION}
            | {p.name: p.version for p in self.registry.plugins if not p.error},
        }

    def _made_with(self) -> dict[str, Any]:
        """The provenance, with the batch size the item was sampled at after a backoff: so the
        file equals that of a run started at that size, and ``reproduce`` samples it so."""
        if self.fits is None:
            return self._provenance
        config = {**self._provenance["config"]}
        config["run"] = {**config["run"], "batch_size": self.fits}
        return {**self._provenance, "config": config}

    @contextmanager
    def _nonfinite(self, where: str) -> Iterator[None]:
        """NaN latents: add the item and the sampler's guidance scales (its declared `scales`)."""
        try:
            yield
        except NonFiniteLatents as exc:
            scales = [
                f"sampler.{name} = {value:g}"
                for name, value in guidance_scales(self.config.sampler).items()
                if value is not None
            ]
            hint = f"; the run's guidance settings: {', '.join(scales)}" if scales else ""
            raise NonFiniteLatents(f"{exc} (while {where}{hint})") from exc


class _OutOfMemory(Exception):
    """Sampling a batch of more than one item ran out of memory (nothing was written)."""


@contextmanager
def _backoff(rows: int) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        if rows > 1 and is_out_of_memory(exc):
            raise _OutOfMemory from exc
        raise


def _indices(batch: Batch[RunItem]) -> set[int]:
    return {r.index for r in batch.rows}


def _named(rows: Sequence[RunItem], shown_at_most: int = 3) -> str:
    """The items of a batch for a message: all of a small batch, the first few of a large one."""
    names = [
        f"{r.output_stem.name} (prompt {shown(r.prompt)}, seed {r.seed})"
        for r in rows[:shown_at_most]
    ]
    if len(rows) == 1:
        return names[0]
    more = f" and {len(rows) - shown_at_most} more" if len(rows) > shown_at_most else ""
    return f"a batch of {len(rows)} items: {', '.join(names)}{more}"


def per_item_counter(counter: EvaluationCounter, size: int) -> EvaluationCounter:
    """One item's share of what its batch cost: every guided call and network call of the batch
    (each item took part in each), and the rows divided by the batch size. The rows are exact
    shares for guiders built on `GuidanceRule` (every call evaluates every item's rows), so an
    item's record does not depend on the batch size; other guiders' rows are rounded."""
    rows = {
        k: round(v / size)
        for k, v in counter.as_dict().items()
        if k in ("rows", "cond_rows", "uncond_rows")
    }
    return EvaluationCounter(counter.guided_calls, counter.model_calls, **rows)


@dataclass
class RowObservers:
    """One observer over a batch that hands each watched item its own row of every step: an
    item's observers (its step log, its progress bar) see the latents a batch-1 run would give
    them, as a ``(1, ...)`` tensor."""

    by_row: dict[int, list[Observer]]

    def __call__(self, event: StepEvent) -> None:
        for k, observers in self.by_row.items():
            row = replace(event, x=event.x[k : k + 1])
            for observer in observers:
                observer(row)


@contextmanager
def _writing(stem: Path) -> Iterator[None]:
    """A write that fails (disk full, permissions changed mid-run) as one paragraph, exit 1."""
    try:
        yield
    except OSError as err:
        raise RunFailure(
            f"could not write the output {stem.name} in {stem.parent}: {err.strerror or err}"
        ) from err


def progress_counter(callback: Callable[[int], None]) -> Callable[[StepEvent], None]:
    """An observer reporting the deepest level reached so far (zigzags do not move it back)."""
    deepest = 0

    def observe(event: StepEvent) -> None:
        nonlocal deepest
        if event.kind == "denoise" and event.dst > deepest:
            deepest = event.dst
            callback(deepest)

    return observe
