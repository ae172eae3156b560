"""``zsampling leaderboard``: every registered reflective sampler and guider, on every testbed,
placed on standard CFG's alignment-fidelity frontier.

What runs, per testbed (the arms are the same code path for built-ins and plugins):

- the CFG sweep (standard sampling at each of the testbed's scales) and the held-out real arm;
- every registered sampler but ``standard``, at its documented defaults with the testbed's
  guidance, and on a small grid: twice that guidance; zigzag also in each of its three inversion
  modes; W2SD inverts with the testbed's weak model;
- every registered guider but ``cfg``, with standard sampling, at the testbed's guidance (CFG++,
  whose scale is its own lambda in [0, 1], at ``CFG_PP_SCALES`` instead; one with a
  ``weak_model`` setting, AutoGuidance, gets the testbed's weak model); a guider the testbed's
  model cannot run (PAG, SEG, SLG need attention layers) is reported as skipped, with its refusal;
- the equal-evaluations arms: standard sampling at the testbed's guidance with as many steps as a
  method at that guidance spent guided evaluations;
- the search arms (`zsampling.evaluation.search_arms`): best-of-N and zero-order search over
  standard sampling's noises, scored by the testbed's verifier, at zigzag's (and Z²'s) cost.

Results (`results.json`, `table.md`, `frontier.png` per testbed; `leaderboard.md` over all) are
what docs/evaluation.md's tables are generated from.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, cast

import numpy as np

from zsampling.core.errors import ZSamplingError
from zsampling.core.guidance import GuiderComponent
from zsampling.core.sampler import ReflectiveSampler, scale_fields
from zsampling.evaluation.frontier import (
    ALIGNMENT,
    RANKING,
    Arm,
    equivalent_scale,
    place,
    real_arm,
    run_arm,
    sanity_gate,
    sweep_arms,
)
from zsampling.evaluation.testbeds import Testbed
from zsampling.plugins.registry import Registry
from zsampling.samplers import Standard

INVERSION_MODES = ("source", "target", "official")
CFG_PP_SCALES = (0.5, 1.0)
"""CFG++'s scales (its lambda, in [0, 1]; the testbeds' CFG scales mean nothing to it)."""


@dataclass
class ArmSpec:
    """An arm to run: a sampler (and guider) with a label, before it has run."""

    key: str
    label: str
    sampler: ReflectiveSampler
    guider: GuiderComponent | None = None
    kind: str = "method"
    steps: int | None = None
    weak: bool = False
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Skipped:
    """A registered component that could not run on a testbed, and why (reported, not hidden)."""

    label: str
    reason: str


def _with_guidance(cls: type[Any], guidance: float, **settings: Any) -> Any:
    """``cls`` at ``guidance`` (its main declared scale), or at its defaults if it has none."""
    main = scale_fields(cls)[:1]
    return cls(**dict.fromkeys(main, guidance), **settings)


def _build(label: str, make: Callable[[], Any]) -> Any:
    """``make()``, or `Skipped` when the component's defaults leave a required setting unset."""
    from pydantic import ValidationError

    try:
        return make()
    except ValidationError as err:
        missing = [".".join(map(str, e["loc"])) for e in err.errors() if e["type"] == "missing"]
        what = f"no default for {', '.join(missing)}" if missing else str(err.errors()[0]["msg"])
        return Skipped(label, f"cannot run at its defaults: {what}")


def method_specs(testbed: Testbed, registry: Registry) -> Iterator[ArmSpec | Skipped]:
    """Every registered sampler and guider as arms (see the module docstring); components whose
    defaults are incomplete come back as `Skipped`."""
    g = testbed.guidance
    for name in registry.names("sampler"):
        if name == "standard":
            continue
        cls = registry.components["sampler"][name].cls
        variants: list[tuple[str, dict[str, Any], float]] = []
        if name == "zigzag":
            variants += [(f"zigzag ({mode})", {"inversion": mode}, g) for mode in INVERSION_MODES]
            variants.append(("zigzag (source)", {"inversion": "source"}, 2 * g))
        else:
            variants += [(name, {}, g), (name, {}, 2 * g)]
        for label, settings, scale in variants:
            has_scale = bool(scale_fields(cls))
            text = f"{label}, g={scale:g}" if has_scale else label
            sampler = _build(text, partial(_with_guidance, cls, scale, **settings))
            if isinstance(sampler, Skipped):
                yield sampler
                break
            yield ArmSpec(
                key=text.replace(" ", "").replace(",", "-"),
                label=text,
                sampler=sampler,
                weak=name == "w2sd",
            )
            if not has_scale:
                break  # a sampler that declares no scale has one variant: its defaults
    for name in registry.names("guider"):
        if name == "cfg":
            continue
        cls = registry.components["guider"][name].cls
        for scale in CFG_PP_SCALES if name == "cfg-pp" else (g,):
            label = f"standard + {name} guider, g={scale:g}"
            guider = _build(label, cls)
            if isinstance(guider, Skipped):
                yield guider
                break
            yield ArmSpec(
                key=f"guider-{name}-g={scale:g}",
                label=label,
                sampler=Standard(guidance=scale),
                guider=cast(GuiderComponent, guider),
                weak=isinstance(getattr(guider, "weak_model", None), str),
            )


def equal_evaluation_specs(testbed: Testbed, methods: list[Arm]) -> list[ArmSpec]:
    """Standard sampling at the testbed's guidance with as many steps as a method at that
    guidance spent guided evaluations (one arm per distinct cost)."""
    g = testbed.guidance
    costs = sorted(
        {round(a.guided_calls_per_item) for a in methods if a.guidance in (None, g)}
    )
    return [
        ArmSpec(
            key=f"equal-evals-{n}",
            label=f"standard, {n} steps (equal evaluations), g={g:g}",
            sampler=Standard(guidance=g),
            kind="equal-evals",
            steps=n,
        )
        for n in costs
        if n > testbed.steps
    ]


def calibrated_specs(testbed: Testbed, sweep: list[Arm], methods: list[Arm]) -> list[ArmSpec]:
    """Standard CFG at each method's equivalent scale (point estimate), to run for real."""
    scales = np.array([a.guidance for a in sweep], dtype=float)
    curve = np.array([a.alignment for a in sweep])
    specs = []
    for arm in methods:
        s = equivalent_scale(scales, curve, arm.alignment)
        if np.isfinite(s):
            specs.append(
                ArmSpec(
                    key=f"calibrated-{arm.key}",
                    label=f"standard, CFG {s:.3g} (calibrated to {arm.label})",
                    sampler=Standard(guidance=round(float(s), 4)),
                    kind="calibrated",
                )
            )
    return specs


def run_spec(testbed: Testbed, spec: ArmSpec) -> Arm:
    extra = {"weak": testbed.weak_model()} if spec.weak else None
    return run_arm(
        testbed,
        spec.key,
        spec.label,
        spec.kind,
        spec.sampler,
        guider=spec.guider,
        steps=spec.steps,
        extra_models=extra,
    )


def evaluate_testbed(
    testbed: Testbed,
    specs: list[ArmSpec | Skipped],
    *,
    replicates: int = 300,
    equal_evaluations: bool = True,
    calibrated: bool = False,
    search: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the sweep, the real arm and ``specs`` (plus their equal-evaluation arms) on one
    testbed; place everything on the frontier; return the results as JSON-ready data."""
    say = progress or (lambda _: None)
    start = time.perf_counter()
    say(f"{testbed.name}: CFG sweep ({len(testbed.sweep)} scales)")
    sweep = sweep_arms(testbed)
    real = real_arm(testbed)
    methods: list[Arm] = []
    skipped = [s for s in specs if isinstance(s, Skipped)]
    for spec in specs:
        if isinstance(spec, Skipped):
            continue
        say(f"{testbed.name}: {spec.label}")
        try:
            methods.append(run_spec(testbed, spec))
        except ZSamplingError as err:  # the component refuses this model, in its own words
            skipped.append(Skipped(spec.label, f"refused this testbed's model: {err}"))
    extra = equal_evaluation_specs(testbed, methods) if equal_evaluations else []
    if calibrated:
        extra += calibrated_specs(testbed, sweep, methods)
    for spec in extra:
        say(f"{testbed.name}: {spec.label}")
        methods.append(run_spec(testbed, spec))
    if search:
        from zsampling.evaluation.search_arms import search_arms

        searched, refused = search_arms(testbed, methods, sweep, say)
        methods += searched
        skipped += [Skipped(label, reason) for label, reason in refused]
    say(f"{testbed.name}: sanity gate and frontier (bootstrap)")
    gate = sanity_gate(testbed, real, sweep)
    placed = place(testbed, sweep, methods, replicates=replicates)
    prompts, seeds = testbed.items()
    return {
        "testbed": testbed.name,
        "title": testbed.title,
        "notes": testbed.notes,
        "steps": testbed.steps,
        "guidance": testbed.guidance,
        "items": len(prompts),
        "items_per_prompt": testbed.items_per_prompt,
        "prompts": testbed.prompts,
        "seeds": [seeds[0], seeds[-1]],
        "judge": testbed.judge_quality(),
        "alignment_statistic": ALIGNMENT,
        "ranking_metric": RANKING,
        "ranks": bool(gate[RANKING]["passes"]),
        "per_class_for_pooled_measures": testbed.per_class,
        "gate": gate,
        "reference": _summary(real, None),
        "sweep": [_summary(a, placed[a.key]) for a in sweep],
        "arms": [_summary(a, placed[a.key]) for a in methods],
        "skipped": [{"label": k.label, "reason": k.reason} for k in skipped],
        "seconds": round(time.perf_counter() - start, 1),
    }


def _summary(arm: Arm, placed: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": arm.key,
        "label": arm.label,
        "kind": arm.kind,
        "method": arm.method,
        "settings": arm.settings,
        "guidance": arm.guidance,
        "steps": arm.steps,
        "guided_calls_per_item": arm.guided_calls_per_item,
        "rows_per_item": arm.rows_per_item,
        "ms_per_item": round(1000 * arm.seconds_per_item, 3),
        # nanmean: a per-category column is NaN on items whose prompt has no such check
        "alignment": {name: float(np.nanmean(v)) for name, v in arm.stats.items()},
        "fidelity": arm.fidelity,
    }
    if placed is not None:
        out["frontier"] = placed
    if arm.search:
        out["search"] = arm.search
    return out


def write_results(results: dict[str, Any], folder: Path) -> None:
    """``results.json``, ``table.md`` and ``frontier.png`` for one testbed."""
    from zsampling.evaluation.report import frontier_plot, testbed_table
    from zsampling.runs.outputs import atomic_write

    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2, sort_keys=True) + "\n"
    atomic_write(folder / "results.json", lambda p: p.write_text(text, encoding="utf-8"))
    table = testbed_table(results) + "\n"
    atomic_write(folder / "table.md", lambda p: p.write_text(table, encoding="utf-8"))
    atomic_write(folder / "frontier.png", lambda p: frontier_plot(results, p))


def run_leaderboard(
    out: Path,
    testbeds: list[str],
    registry: Registry,
    *,
    replicates: int = 300,
    progress: Callable[[str], None] | None = None,
) -> str:
    """Run every testbed in ``testbeds``; write each one's results and ``leaderboard.md`` (and
    ``.json``) to ``out``; return the leaderboard table."""
    from zsampling.evaluation.report import leaderboard_table
    from zsampling.evaluation.testbeds import TESTBEDS
    from zsampling.runs.outputs import atomic_write

    start = time.perf_counter()
    everything = []
    for name in testbeds:
        testbed = TESTBEDS[name]()
        specs = list(method_specs(testbed, registry))
        results = evaluate_testbed(testbed, specs, replicates=replicates, progress=progress)
        write_results(results, out / name)
        everything.append(results)
    table = leaderboard_table(everything)
    seconds = round(time.perf_counter() - start, 1)
    page = f"{table}\n\n{len(testbeds)} testbed(s) in {seconds} s.\n"
    atomic_write(out / "leaderboard.md", lambda p: p.write_text(page, encoding="utf-8"))
    summary = {"testbeds": testbeds, "seconds": seconds, "results": everything}
    text = json.dumps(summary, indent=2, sort_keys=True) + "\n"
    atomic_write(out / "leaderboard.json", lambda p: p.write_text(text, encoding="utf-8"))
    return page
