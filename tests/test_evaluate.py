"""``zsampling eval``, ``zsampling leaderboard`` and ``zsampling demo`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from zsampling.cli import app

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("single_thread")


def flat(text: str) -> str:
    return " ".join(text.split())


def test_eval_places_the_method_on_the_cfg_frontier(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "eval", str(ROOT / "examples" / "analytic-eval.toml"), "--out", str(tmp_path),
            "--scales", "1,1.5,2,2.5,3,4,5,6", "--items", "40", "--bootstrap", "100",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["items"] == 120 and res["seeds"] == [1000, 1119]  # every item its own seed
    assert res["ranks"] and res["gate"]["energy"]["passes"]
    assert res["reference"]["kind"] == "real"
    kinds = [a["kind"] for a in res["arms"]]
    assert kinds[0] == "method" and "equal-evals" in kinds and "calibrated" in kinds
    method = res["arms"][0]
    # zigzag at gamma1 = 2 acts like CFG ~ 2 * gamma1 = 4 (GA-Eval's first-order prediction)
    assert 3.2 < method["frontier"]["equivalent_scale"]["value"] < 4.3
    assert method["frontier"]["delta_at_equal_alignment"]["ci95"] is not None
    # the calibrated CFG arm, run for real, reaches the method's alignment
    calibrated = next(a for a in res["arms"] if a["kind"] == "calibrated")
    gap = calibrated["alignment"]["logp"] - method["alignment"]["logp"]
    assert abs(gap) < 0.15 * abs(method["alignment"]["logp"]), gap
    with Image.open(tmp_path / "frontier.png") as img:
        assert img.size == (800, 600)
    table = (tmp_path / "table.md").read_text()
    assert "held-out real data" in table and "Sanity gate" in table
    assert "zigzag (the config's method)" in flat(result.output)


def test_eval_needs_a_testbed_model(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[model]\nuse = "diffusers"\npath = "{tmp_path}"\n[sampler]\nuse = "zigzag"\n'
        '[run]\nprompts = ["a cat"]\n'
    )
    result = CliRunner().invoke(app, ["eval", str(config), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "model.use = 'diffusers' is invalid: a testbed model for eval" in flat(result.output)
    assert not (tmp_path / "o").exists()


def test_eval_refuses_bad_scales(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["eval", str(ROOT / "examples" / "analytic-eval.toml"), "--scales", "1"]
    )
    assert result.exit_code == 2
    assert "--scales = '1' is invalid: two or more finite scales" in flat(result.output)


def test_leaderboard_runs_every_registered_method(tmp_path: Path) -> None:
    """On the analytic testbed: every built-in sampler (but standard) and guider (but cfg) is an
    arm with intervals; the results carry the held-out real reference; files are written."""
    result = CliRunner().invoke(
        app, ["leaderboard", "--out", str(tmp_path), "--testbeds", "analytic", "--bootstrap", "50"]
    )
    assert result.exit_code == 0, result.output
    res = json.loads((tmp_path / "analytic" / "results.json").read_text())
    methods = {a["method"] for a in res["arms"] if a["kind"] == "method"}
    assert methods == {"zigzag", "restart", "w2sd", "implicit-zigzag", "z2", "standard"}
    guiders = {a["label"] for a in res["arms"] if "guider" in a["label"]}  # standard + each
    ran = ["apg", "cfg-zero-star", "tangential-cfg", "rescaled-cfg", "magnitude-aware"]
    ran += ["apg-mix", "auto-guidance"]  # AutoGuidance with the testbed's weak model
    # CFG++ at its own lambda, not at the testbed's CFG scale
    cfg_pp = {"standard + cfg-pp guider, g=0.5", "standard + cfg-pp guider, g=1"}
    assert guiders == {f"standard + {name} guider, g=2" for name in ran} | cfg_pp
    modes = {a["settings"].get("inversion") for a in res["arms"] if a["method"] == "zigzag"}
    assert modes == {"source", "target", "official"}
    # what cannot run at its defaults is listed with the reason, not silently dropped
    skipped = {s["label"]: s["reason"] for s in res["skipped"]}
    assert "no default for zag_prompt" in skipped["asymmetry-zigzag, g=2"]
    assert "no default for true_cfg_scale" in skipped["standard + true-cfg guider, g=2"]
    for name in ("pag", "seg", "slg"):  # no attention layers to perturb
        reason = skipped[f"standard + {name} guider, g=2"]
        assert "guider.use" in reason and "AnalyticModel" in reason, reason
    assert "image latents" in skipped["standard + fdg guider, g=2"]
    for arm in res["arms"]:
        assert arm["frontier"]["alignment"]["ci95"] is not None, arm["label"]
    assert res["reference"]["label"] == "held-out real data"
    assert (tmp_path / "analytic" / "frontier.png").exists()
    board = (tmp_path / "leaderboard.md").read_text()
    assert "| analytic | zigzag (source), g=2 |" in board


def test_demo_on_the_hard_prompts(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--items", "3"])
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    for arm in ("held-out real data", "standard, g=1.5", "zigzag, g=1.5", "standard, 43 steps",
                "standard, g=3"):
        assert arm in text, arm
    for column in ("accuracy", "energy", "recall", "coverage", "diversity"):
        assert column in text
    with Image.open(tmp_path / "comparison.png") as img:
        # 3 arms x 3 samples of 8x16 digits, upscaled 5x, with headers and row labels
        assert img.size[0] > 3 * 3 * 80 and img.size[1] > 10 * 40


def test_demo_on_unknown_testbed() -> None:
    result = CliRunner().invoke(app, ["demo", "--model", "sdxl"])
    assert result.exit_code == 2
    assert "--model = 'sdxl' is invalid: one of analytic, digits, pairs" in flat(result.output)
