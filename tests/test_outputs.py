"""Nothing lost, nothing surprising: atomic outputs, resume after SIGKILL, reproduce, many
processes, and failures explained."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from PIL import Image
from pydantic import BaseModel
from safetensors.torch import load_file
from typer.testing import CliRunner

from zsampling.adapters.analytic import AnalyticAdapter
from zsampling.cli import app
from zsampling.plugins import hookimpl
from zsampling.plugins.manager import build_registry
from zsampling.runs.outputs import read_metadata

# Tiny models in child processes: one OpenMP thread each, so a busy machine does not make the
# children spin against each other (the timing of the kill stays meaningful).
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}

CONFIG = """
[model]
use = "analytic"
[schedule]
use = "uniform"
steps = {steps}
[sampler]
use = "zigzag"
guidance = 2.0
[run]
prompts = ["red", "green"]
seeds = [0, 1, 2, 3]
output = "{out}"
"""


def write_config(tmp: Path, steps: int = 10, name: str = "run.toml") -> tuple[Path, Path]:
    out = tmp / "out"
    path = tmp / name
    path.write_text(CONFIG.format(steps=steps, out=out))
    return path, out


def manifest(out: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]


def assert_complete(out: Path, n: int) -> None:
    """Every item present exactly once, loadable, with exactly one manifest record."""
    files = sorted(p.name for p in out.glob("*.safetensors"))
    assert len(files) == n, files
    assert not list(out.glob(".*")), "temporary files left behind"
    records = manifest(out)
    assert sorted(r["file"] for r in records) == files
    assert sorted(r["index"] for r in records) == list(range(n))
    for name in files:
        assert load_file(str(out / name))["sample"].shape == (2,)


DIGITS_CONFIG = """
[model]
use = "digits"
[schedule]
use = "uniform"
steps = 12
[sampler]
use = "zigzag"
guidance = 2.0
[run]
prompts = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
seeds = [0]
output = "{out}"
"""


def test_sigkill_then_resume_png(tmp_path: Path) -> None:
    """The same on the embedded digits model, whose outputs are PNG images."""
    out = tmp_path / "out"
    config = tmp_path / "digits.toml"
    config.write_text(DIGITS_CONFIG.format(out=out))
    cmd = [sys.executable, "-m", "zsampling", "run", str(config), "-q"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ONE_THREAD
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        manifest_path = out / "manifest.jsonl"
        if manifest_path.exists() and manifest_path.read_text().count("\n") >= 2:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(out.glob("*.png")))
    assert 2 <= done_before < 10, "the kill must land mid-run"
    again = subprocess.run(cmd, capture_output=True, text=True, env=ONE_THREAD)
    assert again.returncode == 0, again.stderr
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 10
    assert not list(out.glob(".*"))
    records = manifest(out)
    assert sorted(r["file"] for r in records) == [p.name for p in pngs]
    for png in pngs:
        with Image.open(png) as img:
            img.verify()
        with Image.open(png) as img:
            assert img.size == (8, 8)
        assert read_metadata(png)["prompt"] in "0123456789"


def test_sigkill_then_resume(tmp_path: Path) -> None:
    config, out = write_config(tmp_path, steps=150)
    # Four batches of two, so the kill lands between batches' writes.
    cmd = [sys.executable, "-m", "zsampling", "run", str(config), "-q", "-s", "run.batch_size=2"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ONE_THREAD
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = (
            (out / "manifest.jsonl").read_text().count("\n")
            if (out / "manifest.jsonl").exists()
            else 0
        )
        if done >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.safetensors")}
    assert 2 <= len(before) < 8, "the kill must land mid-run"
    again = subprocess.run(cmd, capture_output=True, text=True, env=ONE_THREAD)
    assert again.returncode == 0, again.stderr
    assert_complete(out, 8)
    for name, mtime in before.items():  # finished outputs were kept, not regenerated
        assert (out / name).stat().st_mtime_ns == mtime


def test_lost_manifest_lines_are_recovered_from_the_files(tmp_path: Path) -> None:
    config, out = write_config(tmp_path)
    assert CliRunner().invoke(app, ["run", str(config), "-q"]).exit_code == 0
    records = manifest(out)
    (out / "manifest.jsonl").write_text(json.dumps(records[0]) + "\n{torn")
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.safetensors")}
    result = CliRunner().invoke(app, ["run", str(config), "-q"])
    assert "0 generated, 8 kept" in " ".join(result.output.split())
    assert_complete(out, 8)
    recovered = {r["file"]: r for r in manifest(out)}
    for r in records:
        assert recovered[r["file"]]["config"] == r["config"]
        assert recovered[r["file"]]["evaluations"] == r["evaluations"]
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.safetensors")} == mtimes


def test_overwrite_only_when_asked_and_methods_never_collide(tmp_path: Path) -> None:
    config, out = write_config(tmp_path)
    assert CliRunner().invoke(app, ["run", str(config), "-q"]).exit_code == 0
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("*.safetensors")}
    time.sleep(0.01)
    result = CliRunner().invoke(app, ["run", str(config), "-q", "--overwrite"])
    assert result.exit_code == 0
    assert all(p.stat().st_mtime_ns > first[p.name] for p in out.glob("*.safetensors"))
    assert_complete(out, 8)
    other = CliRunner().invoke(app, ["run", str(config), "-q", "--set", "sampler.guidance=3"])
    assert other.exit_code == 0
    assert len(list(out.glob("*.safetensors"))) == 16  # a different method adds, never replaces
    assert len(manifest(out)) == 16


def test_reproduce_from_embedded_settings(tmp_path: Path) -> None:
    config, out = write_config(tmp_path)
    assert CliRunner().invoke(app, ["run", str(config), "-q"]).exit_code == 0
    target = sorted(out.glob("green-*-seed2-*.safetensors"))[0]
    meta = read_metadata(target)
    assert (meta["prompt"], meta["seed"]) == ("green", 2)
    assert meta["versions"]["zsampling"]
    assert meta["model"].startswith("analytic:")
    result = CliRunner().invoke(app, ["reproduce", str(target), "--out", str(tmp_path / "again")])
    assert result.exit_code == 0, result.output
    assert "bit for bit" in " ".join(result.output.split())
    assert (tmp_path / "again" / target.name).read_bytes() == target.read_bytes()


def test_two_accelerate_processes_match_one(tmp_path: Path) -> None:
    if shutil.which("accelerate") is None:
        pytest.skip("accelerate's launcher is not installed")
    config, out = write_config(tmp_path, steps=12)
    single = CliRunner().invoke(app, ["run", str(config), "-q"])
    assert single.exit_code == 0
    multi_out = tmp_path / "multi"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launched = subprocess.run(
        [
            "accelerate",
            "launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "-m",
            "zsampling",
            "run",
            str(config),
            "-q",
            "--set",
            f"run.output={multi_out}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert_complete(multi_out, 8)
    for path in out.glob("*.safetensors"):
        assert (multi_out / path.name).read_bytes() == path.read_bytes()


class Exploding(BaseModel):
    """A third-party sampler with a bug."""

    name: ClassVar[str] = "exploding"

    def sample(self, x: torch.Tensor, path: Any) -> torch.Tensor:
        raise ZeroDivisionError("division by zero in my sampler")


class OutOfMemoryModel(AnalyticAdapter):
    name: ClassVar[str] = "oom-analytic"

    def load(self) -> Any:
        model = super().load()

        def predict(*args: Any) -> Any:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

        model.predict = predict  # type: ignore[method-assign]
        return model


class Plugin:
    @hookimpl
    def zsampling_register_samplers(self, register: Any) -> None:
        register(Exploding)

    @hookimpl
    def zsampling_register_adapters(self, register: Any) -> None:
        register(OutOfMemoryModel)


@pytest.fixture
def with_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = build_registry([("buggy-plugin", Plugin())], entry_points=False)
    monkeypatch.setattr("zsampling.plugins.manager.default_registry", lambda: registry)


@pytest.mark.usefixtures("with_plugin")
@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "sampler.use=exploding",
            "sampler 'exploding' (plugin 'buggy-plugin') failed while generating",
        ),
        # Halved down to one item (tests/test_backoff.py), then out of memory there too.
        ("model.use=oom-analytic", "out of memory while generating red-"),
    ],
)
def test_failures_are_explained(tmp_path: Path, override: str, expected: str) -> None:
    config, out = write_config(tmp_path)
    data = config.read_text().replace("guidance = 2.0", "") if "exploding" in override else None
    if data is not None:
        config.write_text(data)
    result = CliRunner().invoke(app, ["run", str(config), "--set", override, "-q"])
    flat = " ".join(result.output.split())
    assert result.exit_code == 1, flat
    assert expected in flat
    if "oom" in override:
        assert "Lower run.batch_size" in flat
    assert "Traceback" not in result.output
    assert not list(out.glob("*.safetensors"))
