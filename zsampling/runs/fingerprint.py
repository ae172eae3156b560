"""Model folder fingerprints: which weights made an output."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20


def folder_fingerprint(folder: Path) -> str:
    """sha256 over every file's relative path, size, first and last MiB (16 hex digits).

    Reading whole multi-GB checkpoints for every run would be slow; head, tail and size catch a
    swapped or retrained file in practice.
    """
    h = hashlib.sha256()
    if not folder.exists():
        return "missing"
    for p in sorted(q for q in folder.rglob("*") if q.is_file()):
        size = p.stat().st_size
        h.update(f"{p.relative_to(folder)}:{size}".encode())
        with p.open("rb") as fh:
            h.update(fh.read(CHUNK))
            if size > 2 * CHUNK:
                fh.seek(-CHUNK, 2)
                h.update(fh.read(CHUNK))
    return h.hexdigest()[:16]
