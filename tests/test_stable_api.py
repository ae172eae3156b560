"""A plugin written against the 0.1.0 docs runs unchanged, with a DeprecationWarning naming each
new path; the same plugin written against ``zsampling.api`` runs without one. Both are
pip-installed and found through their entry points, as a user's would be."""

from __future__ import annotations

import importlib
import importlib.metadata as md
import sys
import warnings
from pathlib import Path

import pytest
import torch
from plugin_install import pip_install

import zsampling.api as api
from zsampling import Standard, Uniform, sample
from zsampling.adapters.analytic import AnalyticModel, demo_mixture
from zsampling.plugins import manager
from zsampling.plugins.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = {  # sampler name -> (package folder, top-level module)
    "legacy-recurrence": (  # the example as the 0.1.0 docs wrote it, with a check_steps
        ROOT / "tests" / "packages" / "zsampling-legacy-recurrence",
        "zsampling_legacy_recurrence",
    ),
    "self-recurrence": (  # the example of today's docs, on zsampling.api
        ROOT / "examples" / "zsampling-self-recurrence",
        "zsampling_self_recurrence",
    ),
}

MOVED = [  # every import path the 0.1.0 docs named that has moved: (old, name, new home)
    ("zsampling.path", "SamplingPath", "zsampling.api"),
    ("zsampling.errors", "InvalidArgument", "zsampling.api"),
    ("zsampling.errors", "check_finite", "zsampling.core.errors"),
    ("zsampling.prediction", "Prediction", "zsampling.api"),
    ("zsampling.levels", "TimestepTable", "zsampling.api"),
    ("zsampling.levels", "sigma_from_alpha_cumprod", "zsampling.core.levels"),
    ("zsampling.guidance", "EvaluationCounter", "zsampling.api"),
    ("zsampling.guidance", "CFG", "zsampling.core.cfg"),
    ("zsampling.solvers", "LevelPoint", "zsampling.core.solvers"),
    ("zsampling.solvers", "DPMSolverPP2M", "zsampling.core.solvers"),
    ("zsampling.sampling", "sample", "zsampling.api"),
    ("zsampling.samplers.base", "ReflectiveSampler", "zsampling.core.sampler"),
    ("zsampling.adapters.base", "ModelAdapter", "zsampling.core.model"),
    ("zsampling.kdiffusion", "sample_zigzag", "zsampling.integrations.kdiffusion"),
    ("zsampling.schedules_ays", "AlignYourSteps", "zsampling.schedules.ays"),
    ("zsampling.schedules_diffusers", "Scheduler", "zsampling.schedules.diffusers"),
    ("zsampling.schedules", "karras_sigmas", "zsampling.schedules.karras"),
    ("zsampling.config", "load_config", "zsampling.api"),
    ("zsampling.config", "ConfigError", "zsampling.runs.config"),
    ("zsampling.run", "RunItem", "zsampling.api"),
    ("zsampling.outputs", "read_manifest", "zsampling.runs.outputs"),
    ("zsampling.distributed", "current_shard", "zsampling.runs.distributed"),
    ("zsampling.evaluate", "evaluate", "zsampling.evaluation.evaluate"),
    ("zsampling.metrics_clip", "ClipScore", "zsampling.metrics.clip"),
    ("zsampling.observers", "StepEvent", "zsampling.core.events"),
    ("zsampling.observers", "TrajectoryRecorder", "zsampling.core.events"),
]


@pytest.mark.parametrize(("old", "name", "home"), MOVED, ids=[f"{o}.{n}" for o, n, _ in MOVED])
def test_a_moved_name_still_imports_and_warns_with_its_new_path(
    old: str, name: str, home: str
) -> None:
    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=rf"{old}\.{name} .* import {name} from {home}"):
        value = getattr(module, name)
    assert value is getattr(importlib.import_module(home), name)


def test_a_renamed_class_warns_with_its_new_name() -> None:
    import zsampling.metrics

    with pytest.warns(DeprecationWarning, match="import DigitTypicality from zsampling.metrics"):
        assert zsampling.metrics.DigitRealism is zsampling.metrics.DigitTypicality


def test_a_name_that_never_existed_is_still_an_attribute_error() -> None:
    import zsampling.path

    with pytest.raises(AttributeError, match=r"'zsampling\.path' has no attribute 'Nope'"):
        zsampling.path.Nope  # noqa: B018


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both packages pip-installed into one target folder."""
    target = tmp_path_factory.mktemp("stable-api") / "site"
    for folder, _ in PLUGINS.values():
        pip_install(folder, target / folder.name)
    return target


def registry_from(site: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """A registry whose entry points are the installed packages', each imported afresh."""
    folders = [str(site / folder.name) for folder, _ in PLUGINS.values()]

    def installed(group: str) -> md.EntryPoints:
        dists = md.distributions(path=folders)
        return md.EntryPoints(ep for d in dists for ep in d.entry_points if ep.group == group)

    monkeypatch.setattr(manager.md, "entry_points", installed)
    for folder in folders:
        monkeypatch.syspath_prepend(folder)
    for _, module in PLUGINS.values():
        monkeypatch.delitem(sys.modules, module, raising=False)
    return manager.build_registry()


def run(registry: Registry, use: str, **settings: float) -> torch.Tensor:
    sampler = registry.get("sampler", use).cls(**settings)
    if hasattr(sampler, "check_steps"):
        sampler.check_steps(8)
    model = AnalyticModel(demo_mixture())
    return sample(
        model, sampler, prompts=["red", "blue"], seeds=[0, 1], schedule=Uniform(steps=8)
    ).latents


def test_a_plugin_written_against_0_1_0_and_one_against_the_api_both_run(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.warns(DeprecationWarning) as caught:
        registry = registry_from(site, monkeypatch)
    moved = sorted({str(w.message).split(" is deprecated")[0] for w in caught})
    assert moved == [
        "zsampling.errors.InvalidArgument",
        "zsampling.path.SamplingPath",
        "zsampling.samplers.base.check_reflection_steps",
    ]
    assert all("import " in str(w.message) for w in caught)
    assert {w.filename for w in caught} == {
        str(site / "zsampling-legacy-recurrence" / "zsampling_legacy_recurrence" / "__init__.py")
    }, "each warning points at the plugin's own import line"
    for use in PLUGINS:
        [info] = [p for p in registry.plugins if p.name == use]
        assert info.error is None and [c.name for c in info.components] == [use]

    # No recurrence: exactly standard sampling, for both.
    standard = sample(
        AnalyticModel(demo_mixture()),
        Standard(guidance=3.0),
        prompts=["red", "blue"],
        seeds=[0, 1],
        schedule=Uniform(steps=8),
    ).latents
    for use in PLUGINS:
        torch.testing.assert_close(run(registry, use, guidance=3.0, repeats=0), standard)
    # With recurrence (fresh noise from the path's seeded source): the two are the same sampler.
    legacy = run(registry, "legacy-recurrence", guidance=3.0, repeats=2, recurrent_steps=3)
    new = run(registry, "self-recurrence", guidance=3.0, repeats=2, recurrent_steps=3)
    torch.testing.assert_close(legacy, new, rtol=0, atol=0)
    assert not torch.allclose(legacy, standard)
    with pytest.raises(api.InvalidArgument, match=r"sampler\.recurrent_steps"):
        run(registry, "legacy-recurrence", recurrent_steps=8)


def test_the_plugin_written_against_the_api_raises_no_deprecation_warning(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, module_name = PLUGINS["self-recurrence"]
    monkeypatch.syspath_prepend(str(site / folder.name))
    monkeypatch.delitem(sys.modules, module_name, raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        module = importlib.import_module(module_name)
    assert module.__file__ is not None and str(site) in module.__file__
    assert module.SelfRecurrence.name == "self-recurrence"
