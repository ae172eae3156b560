"""``zsampling eval CONFIG``: one method on the frontier of standard CFG (see
`zsampling.evaluation.frontier` for the protocol).

The config names the method (its ``[sampler]``, ``[guider]``, ``[solver]``, ``[schedule]``) and
the model, which must be a testbed model (``analytic``, ``digits``, ``digit-pairs``): eval judges
samples against held-out real data, and only testbeds have some. ``[run] prompts`` choose the
testbed's prompts; items are ``--items`` per prompt, **each with its own seed** (``[run] seeds``
are not used: reusing a seed across prompts would make intervals over items intervals over fewer
noises than items).

Arms, all on the same items: the CFG sweep, held-out real data, the method, standard sampling with
as many evaluations as the method, and standard CFG at the method's equivalent scale, run for real
(a check on the interpolation).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from zsampling.core.errors import InvalidArgument
from zsampling.core.sampler import main_scale
from zsampling.evaluation.leaderboard import ArmSpec, evaluate_testbed, write_results
from zsampling.evaluation.testbeds import MODEL_TESTBEDS, TESTBEDS, Testbed
from zsampling.runs.config import RunConfig
from zsampling.runs.run import load_model
from zsampling.samplers import Standard


def config_testbed(config: RunConfig, items_per_prompt: int | None = None) -> Testbed:
    """The testbed that judges the config's model, with the config's prompts, model (patches
    included), schedule and solver."""
    adapter = config.model.adapter.name
    name = MODEL_TESTBEDS.get(adapter)
    if name is None:
        raise InvalidArgument(
            "model.use",
            adapter,
            "a testbed model for eval: analytic, digits or digit-pairs (eval compares samples "
            "with held-out real data, which only the testbeds have)",
        )
    kwargs: dict[str, Any] = {"prompts": list(config.run.prompts)}
    if items_per_prompt is not None:
        kwargs["items_per_prompt"] = items_per_prompt
    testbed = TESTBEDS[name](**kwargs)
    testbed.load = lambda: load_model(config.model)
    weak = config.models.get("weak")
    if weak is not None:
        testbed.load_weak = lambda: load_model(weak)
    testbed.schedule_template = config.schedule
    testbed.solver = config.solver
    testbed.steps = int(config.schedule.steps)
    testbed.guidance = guidance_of(config)  # the equal-evaluations arm's scale
    return testbed


def evaluate(
    config: RunConfig,
    out: Path,
    *,
    scales: list[float] | None = None,
    items_per_prompt: int | None = None,
    replicates: int = 300,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the method and its baselines on the config's testbed; write ``results.json``,
    ``table.md`` and ``frontier.png`` to ``out``; return the results."""
    if config.search is not None:
        raise InvalidArgument(
            "search",
            config.search.strategy.name,
            "a config without [search]: zsampling eval places one sampler on the CFG frontier; "
            "search is compared at equal cost by zsampling leaderboard (docs/search.md)",
        )
    testbed = config_testbed(config, items_per_prompt)
    if scales is not None:
        testbed.sweep = sorted(scales)
    # the prompts are checked by the model before any sampling
    testbed.model().encode(testbed.prompts)
    method = ArmSpec(
        key="method",
        label=f"{config.sampler.name} (the config's method)",
        sampler=config.sampler,
        guider=config.guider,
        weak=bool(config.models),
    )
    results = evaluate_testbed(
        testbed,
        [method],
        replicates=replicates,
        progress=progress,
        calibrated=True,
        search=False,
    )
    results["method_settings"] = config.as_dict()
    write_results(results, out)
    return results


def guidance_of(config: RunConfig) -> float:
    """The method's main guidance scale (the scale its standard baselines use); a sampler that
    declares no scale is compared at standard sampling's default scale."""
    scale = main_scale(config.sampler)
    return float(Standard().guidance if scale is None else scale)
