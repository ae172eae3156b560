"""Hostile output folders: whatever a folder holds, zsampling writes only regular files inside it,
never through a link, never over a file it did not write, with the permissions the umask gives.

Each refusal case plants something in (or as) the output folder, runs the good config and asserts
`hostile.Sandbox.refused`: exit code, one paragraph naming the path, no traceback, no partial
output, and every file outside the output folder (the "victim" among them) unchanged.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock
from hostile import GOOD_TOML, Sandbox
from safetensors.torch import save_file

from zsampling.plugins.manager import build_registry
from zsampling.runs.config import load_config
from zsampling.runs.run import plan_items

STEP_LOG = GOOD_TOML + '\n[[observers]]\nuse = "step-log"\n'


def stems(config: Path) -> list[str]:
    cfg = load_config(config, build_registry(entry_points=False))
    return [i.output_stem.name for i in plan_items(cfg)]


def victim(box: Sandbox) -> Path:
    path = box.root / "victim.txt"
    path.write_text("do not touch\n")
    return path


Plant = Callable[[Sandbox, list[str]], None]


def link(name: Callable[[list[str]], str], to: str = "victim") -> Plant:
    def plant(box: Sandbox, s: list[str]) -> None:
        box.out.mkdir(exist_ok=True)
        target = victim(box) if to == "victim" else box.root / "nowhere" / "file"
        (box.out / name(s)).symlink_to(target)

    return plant


def folder(name: Callable[[list[str]], str]) -> Plant:
    def plant(box: Sandbox, s: list[str]) -> None:
        (box.out / name(s)).mkdir(parents=True)

    return plant


def fifo(name: Callable[[list[str]], str]) -> Plant:
    def plant(box: Sandbox, s: list[str]) -> None:
        box.out.mkdir(exist_ok=True)
        os.mkfifo(box.out / name(s))

    return plant


def hardlink(name: Callable[[list[str]], str]) -> Plant:
    def plant(box: Sandbox, s: list[str]) -> None:
        box.out.mkdir(exist_ok=True)
        os.link(victim(box), box.out / name(s))

    return plant


def foreign_bytes(box: Sandbox, s: list[str]) -> None:
    box.out.mkdir()
    (box.out / f"{s[0]}.safetensors").write_bytes(b"\x89PNG not really " * 20)


def foreign_tensor(box: Sandbox, s: list[str]) -> None:
    import torch

    box.out.mkdir()
    save_file({"sample": torch.zeros(2)}, str(box.out / f"{s[0]}.safetensors"))


def swapped_output(box: Sandbox, s: list[str]) -> None:
    """Another item's genuine output renamed into the first item's place."""
    config = box.good("other.toml")
    assert box.invoke(["run", str(config), "-q"]).exit_code == 0
    (box.out / f"{s[1]}.safetensors").replace(box.out / f"{s[0]}.safetensors")
    (box.out / "manifest.jsonl").unlink()


def output_is_file(box: Sandbox, s: list[str]) -> None:
    box.out.write_text("a file, not a folder\n")


def output_under_file(box: Sandbox, s: list[str]) -> None:
    (box.root / "plain").write_text("x")
    box.config(GOOD_TOML.replace("{out}", str(box.root / "plain" / "out")))


def output_link_to_file(box: Sandbox, s: list[str]) -> None:
    box.out.symlink_to(victim(box))


def output_dangling_link(box: Sandbox, s: list[str]) -> None:
    box.out.symlink_to(box.root / "nowhere")


first = lambda s: f"{s[0]}.safetensors"  # noqa: E731
manifest = lambda s: "manifest.jsonl"  # noqa: E731

# (id, config template, plant, extra args, exit code, fragments)
CASES: list[tuple[str, str, Plant, list[str], int, tuple[str, ...]]] = [
    ("manifest-link", GOOD_TOML, link(manifest), [], 2, ("manifest.jsonl is a symbolic link",)),
    (
        "manifest-dangling-link",
        GOOD_TOML,
        link(manifest, "nowhere"),
        [],
        2,
        ("manifest.jsonl is a symbolic link",),
    ),
    ("lock-link", GOOD_TOML, link(lambda s: "manifest.jsonl.lock"), [], 2, ("symbolic link",)),
    ("manifest-folder", GOOD_TOML, folder(manifest), [], 2, ("manifest.jsonl is a folder",)),
    ("manifest-fifo", GOOD_TOML, fifo(manifest), [], 2, ("manifest.jsonl is a special file",)),
    ("manifest-hardlink", GOOD_TOML, hardlink(manifest), [], 2, ("other hard links",)),
    ("output-link", GOOD_TOML, link(first), [], 2, (".safetensors is a symbolic link",)),
    ("output-dangling", GOOD_TOML, link(first, "nowhere"), [], 2, ("a symbolic link",)),
    ("output-folder", GOOD_TOML, folder(first), [], 2, (".safetensors is a folder",)),
    ("output-fifo", GOOD_TOML, fifo(first), [], 2, ("a special file",)),
    (
        "output-link-overwrite",
        GOOD_TOML,
        link(first),
        ["--overwrite"],
        2,
        ("a symbolic link",),
    ),
    ("step-log-link", STEP_LOG, link(lambda s: f"{s[1]}.steps.jsonl"), [], 2, ("symbolic link",)),
    ("step-log-hardlink", STEP_LOG, hardlink(lambda s: f"{s[0]}.steps.jsonl"), [], 2, ("hard",)),
    ("step-log-folder", STEP_LOG, folder(lambda s: f"{s[2]}.steps.jsonl"), [], 2, ("a folder",)),
    ("claim-link", GOOD_TOML, link(lambda s: f".{s[0]}.zs-claim"), [], 2, ("symbolic link",)),
    (
        "temporary-link",
        GOOD_TOML,
        link(lambda s: f".{s[3]}.0123456789ab.zs-tmp"),
        [],
        2,
        ("symbolic link",),
    ),
    ("foreign-bytes", GOOD_TOML, foreign_bytes, [], 2, ("cannot be read as one", "move it away")),
    ("foreign-tensor", GOOD_TOML, foreign_tensor, [], 2, ("carries no zsampling settings",)),
    ("foreign-overwrite", GOOD_TOML, foreign_bytes, ["--overwrite"], 2, ("does not overwrite",)),
    ("swapped-output", GOOD_TOML, swapped_output, [], 2, ("holds another item's settings",)),
    ("output-is-file", GOOD_TOML, output_is_file, [], 2, ("run.output", "it is a file")),
    ("output-under-file", GOOD_TOML, output_under_file, [], 2, ("run.output", "is not a folder")),
    ("output-link-to-file", GOOD_TOML, output_link_to_file, [], 2, ("run.output", "link")),
    ("output-dangling-link", GOOD_TOML, output_dangling_link, [], 2, ("run.output",)),
]


@pytest.mark.parametrize(
    ("template", "plant", "extra", "code", "fragments"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_hostile_output_folder(
    tmp_path: Path,
    template: str,
    plant: Plant,
    extra: list[str],
    code: int,
    fragments: tuple[str, ...],
) -> None:
    box = Sandbox(tmp_path)
    config = box.config(template)
    plant(box, stems(config))
    config = tmp_path / "run.toml"
    box.refused(["run", str(config), "-q", *extra], code, *fragments)
    if (tmp_path / "victim.txt").exists():
        assert (tmp_path / "victim.txt").read_text() == "do not touch\n"
    for p in [box.out / "manifest.jsonl", *box.out.glob("*")] if box.out.is_dir() else []:
        if p.name.endswith(".safetensors") and p.is_symlink():
            assert p.is_symlink(), "a planted link is left as it was"


def test_unwritable_folder_is_refused_before_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``os.access`` says what the kernel would; root may write anywhere, so it is faked here
    (the next test checks the real thing where the suite does not run as root)."""
    box = Sandbox(tmp_path)
    config = box.good()
    box.out.mkdir()
    monkeypatch.setattr("zsampling.runs.checks.writable", lambda folder: False)
    box.refused(["run", str(config), "-q"], 2, "run.output", "a folder you can write in")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into a read-only folder")
def test_read_only_folder_is_refused(tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    config = box.good()
    box.out.mkdir()
    box.out.chmod(0o555)
    try:
        box.refused(["run", str(config), "-q"], 2, "run.output", "a folder you can write in")
    finally:
        box.out.chmod(0o755)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_files_get_the_permissions_the_umask_gives(tmp_path: Path, umask: int) -> None:
    box = Sandbox(tmp_path)
    config = box.config(STEP_LOG)
    old = os.umask(umask)
    try:
        result = box.invoke(["run", str(config), "-q"])
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    made = [p for p in box.out.iterdir() if not p.name.endswith(".lock")]
    assert len(made) == 4 + 4 + 1  # outputs, step logs, manifest
    for p in made:
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask, (p.name, oct(p.stat().st_mode))


def test_a_link_to_a_folder_is_a_fine_output_folder(tmp_path: Path) -> None:
    """Positive control: run.output may itself be a link (the user's choice of place)."""
    box = Sandbox(tmp_path)
    real = tmp_path / "real"
    real.mkdir()
    box.out.symlink_to(real)
    result = box.invoke(["run", str(box.good()), "-q"])
    assert result.exit_code == 0, result.output
    assert len(list(real.glob("*.safetensors"))) == 4


def test_a_damaged_manifest_is_repaired_not_trusted(tmp_path: Path) -> None:
    """Lines that are not our records (not UTF-8, not JSON, JSON of another shape, a record
    naming a file outside the folder) name no output: the run completes and compaction leaves
    exactly one record per output."""
    box = Sandbox(tmp_path)
    config = box.good()
    assert box.invoke(["run", str(config), "-q"]).exit_code == 0
    original = (box.out / "manifest.jsonl").read_bytes()
    outside = victim(box)
    junk = [
        b"\xff\xfe not utf-8 \x80",
        b"[1, 2, 3]",
        b"42",
        b'{"no": "file"}',
        b'{"file": 3}',
        json.dumps({"file": "../victim.txt", "index": 0}).encode(),
        b'{"file": "' + b"x" * 10_000 + b'"}',
        b"{torn",
    ]
    (box.out / "manifest.jsonl").write_bytes(b"\n".join(junk) + b"\n" + original[:-40])
    (box.out / next(box.out.glob("*.safetensors")).name).unlink()
    result = box.invoke(["run", str(config), "-q"])
    assert result.exit_code == 0, result.output
    records = [json.loads(x) for x in (box.out / "manifest.jsonl").read_text().splitlines()]
    files = sorted(p.name for p in box.out.glob("*.safetensors"))
    assert sorted(r["file"] for r in records) == files and len(files) == 4
    assert outside.read_text() == "do not touch\n"


def test_a_write_that_fails_leaves_nothing_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk while writing the third output: exit 1 naming it, two complete outputs, no
    temporary file; the rerun finishes the rest."""
    box = Sandbox(tmp_path)
    config = box.good()
    calls = {"n": 0}
    real = save_file

    def full_disk(tensors: Any, path: str, metadata: Any = None) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            Path(path).write_bytes(b"partial")
            raise OSError(28, "No space left on device")
        real(tensors, path, metadata=metadata)

    monkeypatch.setattr("zsampling.runs.outputs.save_file", full_disk)
    flat = box.refused(
        ["run", str(config), "-q"], 1, "could not write the output", "No space", new_outputs=2
    )
    assert "seed0" in flat or "seed1" in flat
    assert len(list(box.out.glob("*.safetensors"))) == 2
    assert not list(box.out.glob(".*"))
    monkeypatch.undo()
    assert box.invoke(["run", str(config), "-q"]).exit_code == 0
    assert len(list(box.out.glob("*.safetensors"))) == 4


def test_the_folder_is_synced_after_each_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zsampling.core.files as files

    synced: list[Path] = []
    real = files.sync_folder
    monkeypatch.setattr(files, "sync_folder", lambda f: (synced.append(f), real(f)))
    box = Sandbox(tmp_path)
    assert box.invoke(["run", str(box.good()), "-q"]).exit_code == 0
    assert synced.count(box.out) == 4 + 1  # four outputs, one compacted manifest


def test_stale_temporaries_go_unless_their_writer_lives(tmp_path: Path) -> None:
    """A killed writer's temporary file is removed; one whose item is claimed by a live process
    (here: a lock this test holds) is left alone, and so is the item."""
    box = Sandbox(tmp_path)
    config = box.good()
    s = stems(config)
    box.out.mkdir()
    dead = box.out / f".{s[0]}.aaaaaaaaaaaa.zs-tmp"
    live = box.out / f".{s[1]}.bbbbbbbbbbbb.zs-tmp"
    stale_claim = box.out / f".{s[2]}.zs-claim"
    for p in (dead, live, stale_claim):
        p.write_bytes(b"")
    held = FileLock(str(box.out / f".{s[1]}.zs-claim"), timeout=0)
    held.acquire()
    try:
        from zsampling.runs.outputs import sweep

        sweep(box.out)
        assert not dead.exists() and live.exists() and not stale_claim.exists()
    finally:
        held.release()
