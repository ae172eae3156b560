"""Batched runs: ``run.batch_size`` items per sampling call, each with its own noise, file, manifest
line and observers; batches cut from the plan, so resumes, shards and ``reproduce`` give the same
bytes; outputs equal to one-at-a-time runs to float tolerance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from zsampling.cli import app
from zsampling.plugins.manager import default_registry
from zsampling.runs.batches import plan_batches
from zsampling.runs.config import load_config
from zsampling.runs.distributed import Shard
from zsampling.runs.run import ItemResult, RunItem, execute, plan_items

# Ten digits items (five prompts x two seeds), zigzag with a step log: three batches of 4, 4, 2.
CONFIG = """
[model]
use = "digits"
[schedule]
use = "uniform"
steps = 6
[sampler]
use = "zigzag"
guidance = 2.0
[[observers]]
use = "step-log"
[run]
prompts = ["0", "1", "2", "3", "4"]
seeds = [0, 1]
batch_size = {batch}
output = "{out}"
"""
N = 10

# Measured: batch 4 against batch 1 on this model differs by at most 3.2e-6 in the final latents
# (values up to 1.6): float32 rounding of the UNet's batched kernels, grown over 16 guided calls.
# 1e-5 leaves room for other CPUs' kernels and still fails any change of noise, level or guidance.
LATENT_ATOL = 1e-5


def run(tmp: Path, batch: int, out: Path | None = None, **kwargs: Any) -> list[ItemResult]:
    out = out or tmp / f"batch{batch}"
    path = tmp / f"batch{batch}.toml"
    path.write_text(CONFIG.format(batch=batch, out=out))
    return execute(load_config(path, default_registry()), **kwargs)


def snapshot(out: Path) -> dict[str, Any]:
    """The outputs' bytes and the manifest's records without their timing."""
    found: dict[str, Any] = {p.name: p.read_bytes() for p in sorted(out.glob("*.png"))}
    found["manifest"] = {
        name: {k: v for k, v in rec.items() if k != "seconds"} for name, rec in records(out).items()
    }
    return found


def records(out: Path) -> dict[str, dict[str, Any]]:
    lines = (out / "manifest.jsonl").read_text().splitlines()
    return {r["file"]: r for r in map(json.loads, lines)}


def test_batches_are_cut_from_the_plan() -> None:
    plan = [RunItem(i, f"p{i % 3}", i, Path(f"out/item{i}")) for i in range(10)]
    batches = plan_batches(plan, 4)
    assert [[r.index for r in b.rows] for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert all(b.wanted == b.rows for b in batches)
    # Only items 5 and 9 wanted (a resume): their batches are sampled whole, they alone written.
    some = plan_batches(plan, 4, [plan[9], plan[5]])
    assert [[r.index for r in b.rows] for b in some] == [[4, 5, 6, 7], [8, 9]]
    assert [[w.index for w in b.wanted] for b in some] == [[5], [9]]
    # An item given with another output stem (reproduce) takes its plan place, keeping its stem.
    moved = RunItem(6, "p0", 6, Path("elsewhere/item6"))
    [alone] = plan_batches(plan, 4, [moved])
    assert alone.rows[2] is moved and alone.wanted == (moved,)
    assert [r.output_stem for r in alone.rows if r is not moved] == [
        plan[i].output_stem for i in (4, 5, 7)
    ]
    # Items that are not the plan's at their index have no fixed place: batched among themselves.
    stray = [RunItem(3, "other", 7, Path("x")), RunItem(42, "p0", 1, Path("y"))]
    assert [b.rows for b in plan_batches(plan, 4, stray)] == [tuple(stray)]
    with pytest.raises(ValueError):
        plan_batches(plan, 0)


def test_a_batched_run_equals_one_item_at_a_time(tmp_path: Path) -> None:
    one = run(tmp_path, 1)
    four = run(tmp_path, 4)
    assert [r.item.output_stem.name for r in one] == [r.item.output_stem.name for r in four]
    diff = max(float((a.latents - b.latents).abs().max()) for a, b in zip(one, four, strict=True))
    assert diff <= LATENT_ATOL, diff
    # Each item has its own manifest line, with the evaluations a one-at-a-time run records.
    r1, r4 = records(tmp_path / "batch1"), records(tmp_path / "batch4")
    assert sorted(r1) == sorted(r4) and len(r4) == N
    for name, rec in r4.items():
        assert rec["evaluations"] == r1[name]["evaluations"]
        # 11 zigs with both CFG branches, 5 zags at scale 0 (the unconditional row only)
        assert rec["evaluations"]["rows"] == 2 * (2 * 6 - 1) + (6 - 1)
        assert rec["config"]["run"]["batch_size"] == 4
        assert (rec["index"], rec["prompt"], rec["seed"]) == (
            r1[name]["index"],
            r1[name]["prompt"],
            r1[name]["seed"],
        )
    # Each item's step log holds its own row: the same steps as alone, the same statistics.
    for a, b in zip(one, four, strict=True):
        steps = [
            [
                json.loads(x)
                for x in r.path.with_name(r.item.output_stem.name + ".steps.jsonl")
                .read_text()
                .splitlines()
            ]
            for r in (a, b)
        ]
        assert [s["kind"] for s in steps[0]] == [s["kind"] for s in steps[1]]
        assert len(steps[1]) == 3 * 6 - 2
        for s1, s4 in zip(*steps, strict=True):
            assert s4["mean"] == pytest.approx(s1["mean"], abs=LATENT_ATOL)
            assert s4["std"] == pytest.approx(s1["std"], abs=LATENT_ATOL)


def test_resume_shards_and_reproduce_give_the_same_bytes(tmp_path: Path) -> None:
    """Whatever is missing, whichever process makes it, alone or not: the same bytes."""
    first = run(tmp_path, 4)
    out = tmp_path / "batch4"
    reference = snapshot(out)
    # Resume: one item of the first batch and one of the last are lost, with their lines.
    lost = [first[1], first[9]]
    for r in lost:
        r.path.unlink()
    lines = (out / "manifest.jsonl").read_text().splitlines()
    gone = {r.path.name for r in lost}
    (out / "manifest.jsonl").write_text(
        "".join(x + "\n" for x in lines if json.loads(x)["file"] not in gone)
    )
    again = run(tmp_path, 4)
    assert sorted(r.item.index for r in again if not r.skipped) == [1, 9]
    assert snapshot(out) == reference
    # Two accelerate-style shards on one folder: each takes whole batches.
    sharded = tmp_path / "shards"
    for rank in (0, 1):
        run(tmp_path, 4, out=sharded, shard=Shard(rank, 2))
    assert snapshot(sharded) == reference
    # Reproduce one item of a batch alone: bit for bit.
    target = first[6].path
    result = CliRunner().invoke(app, ["reproduce", str(target), "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    assert "bit for bit" in " ".join(result.output.split())
    assert (tmp_path / "rep" / target.name).read_bytes() == target.read_bytes()


def test_reproduce_samples_files_from_before_batching_alone(tmp_path: Path) -> None:
    """A file whose embedded settings predate ``run.batch_size`` was sampled one item at a
    time; reproduce samples it that way (not in a batch of the default size)."""
    from PIL import Image

    from zsampling.runs.outputs import read_metadata, save_output

    path = run(tmp_path, 1)[6].path
    assert path is not None
    meta = read_metadata(path)
    del meta["config"]["run"]["batch_size"]
    old = tmp_path / "old" / path.name.removesuffix(".png")
    old.parent.mkdir()
    with Image.open(path) as img:
        save_output(old, img.copy(), meta)
    result = CliRunner().invoke(app, ["reproduce", f"{old}.png", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "bit for bit" in " ".join(result.output.split())
    assert read_metadata(tmp_path / "r" / path.name)["config"]["run"]["batch_size"] == 1


def test_a_run_samples_each_batch_in_one_call(tmp_path: Path, monkeypatch: Any) -> None:
    import zsampling.runs.run as module

    calls: list[list[int]] = []
    real = module.sample

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(list(kwargs["seeds"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "sample", spy)
    results = run(tmp_path, 4)
    assert calls == [[0, 1, 0, 1], [0, 1, 0, 1], [0, 1]]
    assert [tuple(r.latents.shape) for r in results] == [(1, 1, 8, 8)] * N
    assert [(r.item.prompt, r.item.seed) for r in results] == [
        (i.prompt, i.seed)
        for i in plan_items(load_config(tmp_path / "batch4.toml", default_registry()))
    ]
