"""``zsampling eval`` on the analytic model: the three fair comparisons, JSON and plot."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from zsampling.cli import app

ROOT = Path(__file__).resolve().parents[1]


def test_eval_reports_all_three_baselines(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "eval",
            str(ROOT / "examples" / "analytic-eval.toml"),
            "--out",
            str(tmp_path),
            "--scales",
            "1,2,3,4,5,6",
            "--set",
            "run.seeds=[0,1,2,3,4,5,6,7]",
        ],
    )
    assert result.exit_code == 0, result.output
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["items"] == 24
    assert res["alignment_metric"] == "class-posterior"
    labels = [b["label"] for b in res["baselines"]]
    assert labels[0] == "standard, equal guidance"
    assert labels[1] == "standard, 58 steps (equal evaluations)"  # 3T - 2 guided calls, T = 20
    calibrated = res["baselines"][2]
    # One zigzag round acts like guidance 2 * gamma1 - gamma2 = 4 to first order.
    assert 3.0 < calibrated["guidance"] < 5.0
    method = res["method"]["means"]["class-posterior"]
    assert abs(calibrated["means"]["class-posterior"] - method) < 0.02
    equal = res["baselines"][0]["method_vs_baseline"]["class-posterior"]
    assert equal["win_rate"] > 0.9 and equal["ci95"][0] > 0.6
    assert len(res["sweep"]) == 6
    with Image.open(tmp_path / "alignment_fidelity.png") as img:
        assert img.size == (480, 480)


def test_eval_needs_a_metric(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[model]\nuse = "analytic"\n[sampler]\nuse = "zigzag"\n[run]\nprompts = ["red"]\n'
    )
    result = CliRunner().invoke(app, ["eval", str(config), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "metrics = [] is invalid: at least one [[metrics]]" in " ".join(result.output.split())
