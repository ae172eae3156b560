"""Out-of-memory backoff: a batch that runs out of memory while sampling is made again in halves
(down to one item), said once per halving, and every output is byte for byte the one a run started
at the smaller ``run.batch_size`` writes. The fault is injected at the model call, on the CPU."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from hostile import DIGITS_TOML, Sandbox
from typer.testing import CliRunner

from zsampling.adapters.digits import DigitsModel
from zsampling.cli import app
from zsampling.runs.backoff import OutOfMemoryBackoff, is_out_of_memory

# Six digits items, batches of {batch}, with a step log (steps must match byte for byte too).
CONFIG = (
    DIGITS_TOML.replace('prompts = ["1", "2"]', 'prompts = ["0", "1", "2"]')
    .replace("seeds = [0]", "seeds = [0, 1]\nbatch_size = {batch}")
    .replace('"standard"', '"zigzag"')
    + '[[observers]]\nuse = "step-log"\n'
)
CPU_REFUSAL = (
    "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you "
    "tried to allocate 1073741824 bytes. Error code 12 (Cannot allocate memory)"
)


def inject(monkeypatch: pytest.MonkeyPatch, fails: Callable[[torch.Tensor], BaseException | None]):
    """Every digits model call first asks ``fails`` (given x) for an error to raise."""
    real = DigitsModel.predict
    calls: list[int] = []

    def predict(self: DigitsModel, x: torch.Tensor, sigma: torch.Tensor, cond: Any) -> Any:
        calls.append(x.shape[0])
        error = fails(x)
        if error is not None:
            raise error
        return real(self, x, sigma, cond)

    monkeypatch.setattr(DigitsModel, "predict", predict)
    return calls


def run(tmp: Path, batch: int, name: str) -> tuple[Any, Path]:
    out = tmp / name
    config = tmp / f"{name}.toml"
    config.write_text(CONFIG.format(batch=batch, out=out))
    return CliRunner().invoke(app, ["run", str(config), "-q"]), out


def files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.suffix != ".jsonl"} | {
        p.name: p.read_bytes() for p in sorted(out.glob("*.steps.jsonl"))
    }


def manifest(out: Path) -> dict[str, dict[str, Any]]:
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    return {r["file"]: {k: v for k, v in r.items() if k != "seconds"} for r in lines}


@pytest.mark.parametrize(
    "error",
    [torch.OutOfMemoryError("CUDA out of memory"), RuntimeError(CPU_REFUSAL)],
    ids=["torch-oom", "cpu-allocator"],
)
def test_halves_to_what_fits_and_matches_that_batch_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    """Batches over 2 rows (a guided call evaluates 2 rows per item) fail: 6 -> 3 -> 1."""
    reference, ref_out = run(tmp_path, 1, "reference")
    assert reference.exit_code == 0, reference.output
    calls = inject(monkeypatch, lambda x: error if x.shape[0] > 2 else None)
    with pytest.warns(OutOfMemoryBackoff) as said:
        result, out = run(tmp_path, 6, "backoff")
    assert result.exit_code == 0, result.output
    halvings = [str(w.message) for w in said if w.category is OutOfMemoryBackoff]
    assert len(halvings) == 2, halvings  # 6 -> 3, 3 -> 1: once each, not once per batch
    assert "a batch of 6 items on cpu: sampling batches of 3" in halvings[0]
    assert "run.batch_size = 1" in halvings[1]
    assert calls[0] == 12 and max(calls[calls.index(2) :]) == 2  # never tried 6 again
    assert files(out) == files(ref_out)  # images (with their embedded settings) and step logs
    assert manifest(out) == manifest(ref_out)
    assert not list(out.glob("*.zs-tmp"))


def test_an_odd_batch_size_halves_to_the_cuts_of_the_smaller_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of 5 cut the six items 0-4, 5; halved to 2 they are cut 0-1, 2-3, 4-5, as a run
    at batch size 2 cuts them (the last batch too, though it had fit)."""
    reference, ref_out = run(tmp_path, 2, "reference")
    assert reference.exit_code == 0, reference.output
    inject(monkeypatch, lambda x: torch.OutOfMemoryError("oom") if x.shape[0] > 4 else None)
    with pytest.warns(OutOfMemoryBackoff, match="a batch of 5 items on cpu: sampling batches of 2"):
        result, out = run(tmp_path, 5, "backoff")
    assert result.exit_code == 0, result.output
    assert files(out) == files(ref_out)
    assert manifest(out) == manifest(ref_out)


def test_out_of_memory_at_one_item_ends_the_run_and_a_rerun_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing left to halve: exit 1 with the advice, the outputs written so far complete and
    kept, no partial file; the same command, with memory to spare, makes the rest."""
    box = Sandbox(tmp_path)

    def fails(x: torch.Tensor) -> BaseException | None:
        written = len(list(box.out.glob("*.png")))
        return torch.OutOfMemoryError("CUDA out of memory") if written >= 2 else None

    inject(monkeypatch, fails)
    config = box.config(CONFIG.replace("{batch}", "1"))
    first = CliRunner().invoke(app, ["run", str(config), "-q"])
    assert first.exit_code == 1, first.output
    assert "out of memory while generating" in first.output
    assert "Lower run.batch_size" in first.output and "Traceback" not in first.output
    kept = sorted(p.name for p in box.out.glob("*.png"))
    assert len(kept) == 2
    assert not list(box.out.glob("*.zs-tmp"))
    monkeypatch.undo()
    second = CliRunner().invoke(app, ["run", str(config), "-q"])
    assert second.exit_code == 0, second.output
    assert "4 generated, 2 kept" in second.output
    assert len(manifest(box.out)) == 6


def test_other_errors_are_not_out_of_memory() -> None:
    assert is_out_of_memory(torch.OutOfMemoryError("x"))
    assert is_out_of_memory(MemoryError())
    assert is_out_of_memory(RuntimeError(CPU_REFUSAL))
    wrapped = ValueError("while sampling")
    wrapped.__cause__ = RuntimeError("CUDA error: out of memory")
    assert is_out_of_memory(wrapped)
    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not is_out_of_memory(ValueError("out of memory"))  # not an allocator's error type
