"""Writing results: atomically, with their settings, never over a user's files unasked."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock
from safetensors import safe_open
from safetensors.torch import save_file

TMP_SUFFIX = ".zs-tmp"
META_KEY = "zsampling"


def slug(text: str, limit: int = 40) -> str:
    """A file-name-safe rendering of a prompt."""
    s = re.sub(r"[^a-zA-Z0-9]+", "-", text).strip("-").lower()
    return s[:limit] or "prompt"


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Write through a temporary file in the same folder, fsync it, and rename it into place.

    A crash (even SIGKILL) leaves either no file or the complete one, never a truncated file; the
    temporary file it may leave is removed by `remove_stale_temporaries` on the next run.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temporaries(folder: Path) -> int:
    """Delete temporary files an interrupted run left (only ours: hidden, ``.zs-tmp`` suffix)."""
    if not folder.is_dir():
        return 0
    stale = list(folder.glob(f".*{TMP_SUFFIX}"))
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


def save_output(path: Path, output: Any, metadata: dict[str, Any]) -> Path:
    """Save one decoded output (PIL image -> PNG, tensor -> safetensors) with its metadata.

    ``path`` has no suffix; the returned path has the one chosen. The metadata is one JSON text
    with sorted keys under the key ``zsampling`` (a PNG text chunk, or the safetensors header),
    so the same settings always give the same bytes.
    """
    text = {META_KEY: json.dumps(metadata, sort_keys=True)}
    if isinstance(output, torch.Tensor):
        target = path.with_name(path.name + ".safetensors")
        tensor = output.detach().to("cpu").contiguous()
        atomic_write(target, lambda p: save_file({"sample": tensor}, str(p), metadata=text))
        return target
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(META_KEY, text[META_KEY])
    target = path.with_name(path.name + ".png")
    atomic_write(target, lambda p: output.save(p, format="PNG", pnginfo=info))
    return target


def read_metadata(path: Path) -> dict[str, Any]:
    """The metadata `save_output` embedded in a PNG or safetensors file ({} if none)."""
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

    It lives next to the manifest as ``<manifest>.lock``, an empty file that stays behind.
    """
    return FileLock(str(path.with_name(path.name + ".lock")))


def append_manifest(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line under the manifest lock (safe with several processes), synced."""
    line = json.dumps(record, sort_keys=True) + "\n"
    with manifest_lock(path), path.open("a+b") as fh:
        end = fh.seek(0, os.SEEK_END)
        if end > 0:
            fh.seek(end - 1)
            if fh.read(1) != b"\n":  # a torn line from a killed writer: end it first
                line = "\n" + line
        fh.write(line.encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())


def read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    """Records by file name (the last record of a file wins); a torn last line is ignored."""
    records: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return records
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("file"), str):
            records[rec["file"]] = rec
    return records


def compact_manifest(path: Path) -> None:
    """Rewrite the manifest atomically: one record per existing file, ordered by item index.

    Read and rewrite happen under the manifest lock, so no line another process appends in
    between is lost.
    """
    folder = path.parent
    with manifest_lock(path):
        records = [r for f, r in read_manifest(path).items() if (folder / f).exists()]
        records.sort(key=lambda r: (r.get("index", 0), r["file"]))
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
        atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))
