"""The GPU benchmark script stays ready without a GPU: run on the CPU at a small size, it measures
every comparison and writes its section of a Markdown file, the device named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_figures.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
DOC = """# Benchmarks

Before.

<!-- gpu-figures:start -->
No GPU yet.
<!-- gpu-figures:end -->

After.
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=ENV, timeout=600
    )


@pytest.mark.slow
def test_the_script_fills_its_section_on_a_small_cpu_run(tmp_path: Path) -> None:
    """Slow: seven interleaved rounds of four comparisons, about a minute on 2 busy CPUs."""
    doc = tmp_path / "benchmarks.md"
    doc.write_text(DOC)
    args = ("--size", "small", "--device", "cpu", "--dtype", "float32", "--steps", "2")
    done = run(*args, "--write", str(doc))
    assert done.returncode == 0, done.stderr[-3000:]
    text = doc.read_text()
    assert text.startswith(
        "# Benchmarks\n\nBefore.\n\n<!-- gpu-figures:start -->\nMeasured on **CPU"
    )
    assert text.endswith("<!-- gpu-figures:end -->\n\nAfter.\n")
    assert "No GPU yet." not in text
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines() if " | " in line}
    names = ("standard", "zigzag", "overhead", "memory, standard", "memory, zigzag", "FLUX")
    for name in (*names, "memory, FLUX"):
        assert name in rows, sorted(rows)
        assert "| failed |" not in rows[name], rows[name]
    assert all("(7 rounds)" in rows[name] for name in ("standard", "zigzag", "FLUX"))
    # T = 2, two prompts: 3 zigs with both branches (4 rows each), 1 zag with the unconditional
    # rows only (2), against 4 calls of 4 rows in the released loop.
    assert "UNet rows, zsampling / released: 14 / 16" in rows["zigzag"]
    assert "--size small --device cpu --dtype float32 --steps 2" in text


def test_the_script_refuses_what_would_give_no_figures(tmp_path: Path) -> None:
    few = run("--size", "small", "--device", "cpu", "--rounds", "3")
    assert few.returncode == 2 and "--rounds must be at least 7" in few.stderr
    doc = tmp_path / "plain.md"
    doc.write_text("# no markers\n")
    unmarked = run("--size", "small", "--device", "cpu", "--write", str(doc))
    assert unmarked.returncode == 2 and "no <!-- gpu-figures:start -->" in unmarked.stderr
    if not _has_cuda():
        doc.write_text(DOC)
        nogpu = run("--write", str(doc))
        assert nogpu.returncode == 2 and "no CUDA device here" in nogpu.stderr
        assert doc.read_text() == DOC


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


CHECKS = SCRIPT.with_name("device_checks.py")


def test_the_device_checks_script_runs_its_cpu_check_and_refuses_the_rest() -> None:
    """``noise`` runs anywhere, and on this torch seeded half-precision noise is diffusers';
    the CUDA checks say they need CUDA instead of measuring nothing."""
    noise = subprocess.run(
        [sys.executable, str(CHECKS), "noise"], capture_output=True, text=True, env=ENV, timeout=300
    )
    assert noise.returncode == 0, noise.stderr[-3000:]
    assert noise.stdout.count("initial_noise == randn_tensor: True") == 2, noise.stdout
    if not _has_cuda():
        syncs = subprocess.run(
            [sys.executable, str(CHECKS), "syncs"], capture_output=True, text=True, env=ENV
        )
        assert syncs.returncode == 2 and "syncs needs a CUDA GPU" in syncs.stderr
