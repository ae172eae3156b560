"""Writing results: atomically, with their settings, never over a user's files unasked, never
through a link, and never losing a manifest line to another process.

The file primitives (no links followed, atomic replace, umask respected, folder synced) are
`zsampling.core.files`; this module adds what an output folder holds: outputs with their embedded
settings, and the manifest, appended and compacted under one inter-process lock.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock
from safetensors import safe_open
from safetensors.torch import save_file

from zsampling.core.files import (
    TMP_SUFFIX,
    UnsafePath,
    append_bytes,
    atomic_write,
    entry_kind,
    read_bytes,
    require_file_or_nothing,
    temporary_key,
)
from zsampling.runs.claims import claim, stale_claim_keys

__all__ = [
    "MANIFEST",
    "META_KEY",
    "TMP_SUFFIX",
    "UnsafePath",
    "append_manifest",
    "atomic_write",
    "compact_manifest",
    "manifest_lock",
    "read_manifest",
    "read_metadata",
    "read_output",
    "save_output",
    "slug",
    "sweep",
]

META_KEY = "zsampling"
MANIFEST = "manifest.jsonl"


def slug(text: str, limit: int = 40) -> str:
    """A file-name-safe rendering of a prompt."""
    s = re.sub(r"[^a-zA-Z0-9]+", "-", text).strip("-").lower()
    return s[:limit] or "prompt"


def save_output(path: Path, output: Any, metadata: dict[str, Any]) -> Path:
    """Save one decoded output (PIL image -> PNG, tensor -> safetensors) with its metadata.

    ``path`` has no suffix; the returned path has the one chosen. The metadata is one JSON text
    with sorted keys under the key ``zsampling`` (a PNG text chunk, or the safetensors header),
    so the same settings always give the same bytes. The temporary file is keyed by the output's
    stem, the item's claim (`zsampling.runs.claims`).
    """
    text = {META_KEY: json.dumps(metadata, sort_keys=True)}
    if isinstance(output, torch.Tensor):
        target = path.with_name(path.name + ".safetensors")
        tensor = output.detach().to("cpu").contiguous()
        atomic_write(
            target, lambda p: save_file({"sample": tensor}, str(p), metadata=text), path.name
        )
        return target
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(META_KEY, text[META_KEY])
    target = path.with_name(path.name + ".png")
    atomic_write(target, lambda p: output.save(p, format="PNG", pnginfo=info), path.name)
    return target


def read_metadata(path: Path) -> dict[str, Any]:
    """The metadata `save_output` embedded in a PNG or safetensors file ({} if none).

    Raises what the file's reader raises for a file that is not what its name says.
    """
    require_file_or_nothing(path)
    if path.suffix == ".safetensors":
        with safe_open(str(path), framework="pt") as fh:
            raw = fh.metadata() or {}
    else:
        from PIL import Image

        with Image.open(path) as img:
            raw = dict(getattr(img, "text", {}))
    data = json.loads(raw[META_KEY]) if META_KEY in raw else {}
    return data if isinstance(data, dict) else {}


def read_output(path: Path) -> torch.Tensor:
    """The stored sample as a tensor (PNG pixels as uint8 HWC), for bit-for-bit comparisons."""
    if path.suffix == ".safetensors":
        with safe_open(str(path), framework="pt") as fh:
            return fh.get_tensor("sample")
    import numpy as np
    from PIL import Image

    with Image.open(path) as img:
        return torch.from_numpy(np.array(img))


def manifest_lock(path: Path) -> FileLock:
    """The inter-process lock every manifest writer holds (``filelock``: POSIX and Windows).

    It lives next to the manifest as ``<manifest>.lock``, an empty file (filelock versions
    differ in whether it stays behind). ``filelock`` opens it with ``O_NOFOLLOW`` (since 3.20.1),
    and a link planted there is refused with a message first.
    """
    lock = path.with_name(path.name + ".lock")
    require_file_or_nothing(lock)
    return FileLock(str(lock))


def append_manifest(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line under the manifest lock (safe with several processes), synced.

    A line torn by a killed writer is ended first, so the new record starts a line of its own.
    """
    line = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
    with manifest_lock(path):
        append_bytes(path, line, newline_first=True)


def read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    """Records by file name (the last record of a file wins).

    Lines that are not a JSON record of ours (torn by a kill, not UTF-8, anything else) are
    skipped: they name no output, and compaction drops them.
    """
    records: dict[str, dict[str, Any]] = {}
    for line in read_bytes(path).splitlines():
        try:
            rec = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            continue
        if isinstance(rec, dict) and _output_name(rec.get("file")):
            records[rec["file"]] = rec
    return records


def _output_name(name: object) -> bool:
    """A name an output of ours can have: a plain file name, not hidden, not a path."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= 255
        and name == Path(name).name
        and not name.startswith(".")
        and "\\" not in name
    )


def compact_manifest(path: Path) -> None:
    """Rewrite the manifest atomically: one record per existing output, ordered by item index.

    Read and rewrite happen under the manifest lock, so no line another process appends in
    between is lost.
    """
    folder = path.parent
    with manifest_lock(path):
        if entry_kind(path) is None:
            return
        records = [r for f, r in read_manifest(path).items() if entry_kind(folder / f) == "file"]
        records.sort(key=lambda r: (_index(r), r["file"]))
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
        atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def _index(record: dict[str, Any]) -> int:
    index = record.get("index", 0)
    return index if isinstance(index, int) else 0


def sweep(folder: Path) -> int:
    """Delete what killed writers left: temporary files and claim files nobody holds.

    A temporary file is deleted only under the lock of its key (the manifest lock for the
    manifest's, the item's claim for an output's), so a concurrent run's file in progress is
    never touched; a claim file is deleted by taking it (`zsampling.runs.claims`).
    """
    if entry_kind(folder) != "a folder":
        return 0
    removed = 0
    names = sorted(os.listdir(folder))
    for name in names:
        key = temporary_key(name)
        if key is None or entry_kind(folder / name) != "file":
            continue
        mine = manifest_lock(folder / MANIFEST) if key == MANIFEST else claim(folder, key, False)
        with mine as held:
            if held is not False:  # the manifest lock is waited for; a claim held elsewhere is not
                (folder / name).unlink(missing_ok=True)
                removed += 1
    for key in stale_claim_keys(names):
        with claim(folder, key, wait=False):
            pass  # taking a claim nobody holds deletes its file
    return removed
