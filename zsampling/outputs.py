"""Writing results: atomically, with their settings, never over a user's files unasked."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file


def slug(text: str, limit: int = 40) -> str:
    """A file-name-safe rendering of a prompt."""
    s = re.sub(r"[^a-zA-Z0-9]+", "-", text).strip("-").lower()
    return s[:limit] or "prompt"


def atomic_write(path: Path, write: Any) -> None:
    """Write through a temporary file in the same folder and rename it into place.

    A crash leaves either the old file or the complete new one, never a truncated file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_output(path: Path, output: Any, metadata: dict[str, Any]) -> Path:
    """Save one decoded output (PIL image -> PNG, tensor -> safetensors) with its metadata."""
    text = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    if isinstance(output, torch.Tensor):
        target = path.with_suffix(".safetensors")
        tensor = output.detach().to("cpu").contiguous()
        atomic_write(target, lambda p: save_file({"sample": tensor}, str(p), metadata=text))
        return target
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for k, v in text.items():
        info.add_text(f"zsampling:{k}", v)
    target = path.with_suffix(".png")
    atomic_write(target, lambda p: output.save(p, format="PNG", pnginfo=info))
    return target


def append_manifest(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line (one ``write`` of a complete line, flushed and synced)."""
    line = json.dumps(record, sort_keys=True) + "\n"
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())
