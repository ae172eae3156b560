"""A third-party guider written from docs/plugins.md alone (tests/packages/zsampling-paper-apg),
pip-installed and found through its entry point, stacked with zigzag + DPM-Solver++(2M) + AYS."""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from plugin_install import pip_install
from safetensors.torch import load_file
from spies import ModelSpy

from zsampling import CFG, AlignYourSteps, DPMSolverPP2M, Zigzag, sample
from zsampling.adapters.analytic import AnalyticModel, demo_mixture
from zsampling.plugins import manager

PACKAGE = Path(__file__).parent / "packages" / "zsampling-paper-apg"
CONFIG = """
[model]
use = "analytic"

[schedule]
use = "ays"
model = "sd"
steps = 10

[solver]
use = "dpmpp-2m"

[sampler]
use = "zigzag"
guidance = 4.0
inversion_guidance = 0.5

[guider]
use = "paper-apg"
momentum = -0.5

[run]
prompts = ["red", "blue"]
seeds = [3]
output = "{output}"
"""
GUIDED = 10 + 2 * 9  # T denoises, plus an invert and a re-denoise on all but the last step


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package pip-installed into a target folder."""
    return pip_install(PACKAGE, tmp_path_factory.mktemp("guider-plugin") / "site")


def zsampling_cli(args: list[str], site: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "zsampling", *args], capture_output=True, text=True, env=env
    )


def test_the_guider_is_found_and_runs_from_a_stacked_config(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def installed(group: str) -> md.EntryPoints:
        dists = md.distributions(path=[str(site)])
        return md.EntryPoints(ep for d in dists for ep in d.entry_points if ep.group == group)

    monkeypatch.setattr(manager.md, "entry_points", installed)
    monkeypatch.syspath_prepend(str(site))
    registry = manager.build_registry()
    [plugin] = [p for p in registry.plugins if p.name == "paper-apg"]
    assert (plugin.error, plugin.version) == (None, "0.2.0")
    [component] = plugin.components
    assert (component.kind, component.name) == ("guider", "paper-apg")
    assert {"eta", "threshold", "momentum", "start", "stop"} <= set(
        component.settings_schema()["properties"]
    )

    config = tmp_path / "stacked.toml"
    config.write_text(CONFIG.format(output=tmp_path / "out"))
    run = zsampling_cli(["run", str(config), "-q"], site)
    assert run.returncode == 0, run.stderr
    manifest = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").open()]
    assert len(manifest) == 2
    for record in manifest:
        assert record["config"]["guider"]["use"] == "paper-apg"
        assert record["config"]["schedule"]["use"] == "align-your-steps"
        assert record["config"]["solver"]["use"] == "dpmpp-2m"
        assert record["versions"]["paper-apg"] == "0.2.0"
        # one batched call (one item x two branches) per guided call, zags included: the rule
        # at the zag scale (0.5) as at the zig scale
        assert record["evaluations"] == {
            "guided_calls": GUIDED,
            "model_calls": GUIDED,
            "rows": 2 * GUIDED,
            "cond_rows": GUIDED,
            "uncond_rows": GUIDED,
            "perturbed_rows": 0,
        }

    # the CLI's outputs are the Python API's, with the class the registry found
    guider = component.cls(momentum=-0.5)
    model = ModelSpy(AnalyticModel(demo_mixture()))
    schedule = AlignYourSteps(steps=10, model="sd")
    for record in manifest:
        result = sample(
            model,  # type: ignore[arg-type]
            Zigzag(guidance=4.0, inversion_guidance=0.5),
            prompts=[record["prompt"]],
            seeds=[3],
            schedule=schedule,
            solver=DPMSolverPP2M(),
            guider=guider,
        )
        saved = load_file(str(tmp_path / "out" / record["file"]))["sample"]
        assert torch.equal(saved, result.latents[0])
        cfg = sample(
            AnalyticModel(demo_mixture()),
            Zigzag(guidance=4.0, inversion_guidance=0.5),
            prompts=[record["prompt"]],
            seeds=[3],
            schedule=schedule,
            solver=DPMSolverPP2M(),
            guider=CFG(),
        )
        assert not torch.allclose(cfg.latents, result.latents)  # the rule does something
    assert model.rows == [2] * (2 * GUIDED)  # every model call: both branches of one item
