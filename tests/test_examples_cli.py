"""The SDXL example stack (unet-weights + AYS + DPM-Solver++ 2M + zigzag) run from the CLI."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from zsampling.cli import app
from zsampling.runs.outputs import read_metadata

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sdxl-dpo-ays-zigzag"


def test_sdxl_dpo_ays_zigzag_from_the_cli(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_tiny", EXAMPLE / "make_tiny_models.py")
    assert spec is not None and spec.loader is not None
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    make.main(tmp_path / "models")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "run",
            str(EXAMPLE / "config.toml"),
            "-q",
            "--set",
            f"model.path={tmp_path / 'models' / 'tiny-sdxl'}",
            "--set",
            f"model.patches.0.path={tmp_path / 'models' / 'tiny-dpo-unet'}",
            "--set",
            "run.prompts=['A small yellow dog.']",
            "--set",
            "run.seeds=[3]",
            "--set",
            f"run.output={out}",
        ],
    )
    assert result.exit_code == 0, result.output
    [png] = out.glob("*.png")
    with Image.open(png) as img:
        img.verify()
    meta = read_metadata(png)
    assert meta["config"]["model"]["patches"][0]["use"] == "unet-weights"
    assert meta["config"]["schedule"] == {"use": "align-your-steps", "steps": 10, "model": "auto"}
    assert meta["config"]["solver"]["use"] == "dpmpp-2m"
    assert meta["evaluations"]["guided_calls"] == 3 * 10 - 2
    base, patch = meta["model"].split("+")  # hashes of the pipeline and DPO UNet folders
    assert base.startswith("diffusers:") and patch.startswith("unet-weights:")
    assert len(base.split(":")[1]) == 16
    record = json.loads((out / "manifest.jsonl").read_text())
    assert record["file"] == png.name and record["seed"] == 3
