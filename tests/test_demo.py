"""``zsampling demo``, the README's main job, on both embedded models (small sizes)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from zsampling.cli import app


def test_digits_demo(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["demo", "--out", str(tmp_path), "--seeds", "2", "--steps", "4"]
    )
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    for arm in ("standard g=2", "zigzag g=2", "standard, 10 steps", "standard g=4"):
        assert arm in flat
    assert "rows/img" in flat and "zigzag wins" in flat
    with Image.open(tmp_path / "comparison.png") as img:
        assert img.size == (2 * 4 * 34 + 10, 10 * 34)  # 10 digits x (standard | zigzag)


def test_analytic_demo(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["demo", "--model", "analytic", "--out", str(tmp_path), "--seeds", "30"]
    )
    assert result.exit_code == 0, result.output
    assert "90 paired samples" in " ".join(result.output.split())
    assert (tmp_path / "comparison.png").exists()


def test_unknown_demo_model() -> None:
    result = CliRunner().invoke(app, ["demo", "--model", "sdxl"])
    assert result.exit_code == 2
    assert "--model = 'sdxl' is invalid: one of digits, analytic" in " ".join(result.output.split())
