"""Per-item claims: two runs on one output folder share it, and each item is made once.

Before an item is generated (or its output checked and its manifest line recovered) the run claims
it: an exclusive ``filelock`` on ``.<output stem>.zs-claim`` in the output folder, held until the
output and its manifest line are written. A run that finds an item claimed goes on with the others
and comes back to it at the end, waiting for the claim: by then the other run has written it (it
is kept) or has died (it is generated). The kernel releases a lock when its process dies, even by
SIGKILL, so a claim never outlives its run, and nothing has to be cleaned up by hand.

The claim file is deleted while the lock is still held, so a finished run leaves none behind.
That is safe because ``filelock`` (since 3.20.4) checks after locking that the file it locked is
still linked, and retries if not: a run waiting on the deleted file cannot mistake it for a claim.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from zsampling.core.files import require_file_or_nothing

CLAIM_SUFFIX = ".zs-claim"


def claim_path(folder: Path, key: str) -> Path:
    return folder / f".{key}{CLAIM_SUFFIX}"


@contextmanager
def claim(folder: Path, key: str, wait: bool) -> Iterator[bool]:
    """Hold the claim on ``key`` for the ``with`` block: yields True, or False when another
    process holds it and ``wait`` is False. A link planted as the claim file is refused."""
    path = claim_path(folder, key)
    require_file_or_nothing(path)
    lock = FileLock(str(path), timeout=-1 if wait else 0)
    try:
        lock.acquire()
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        try:
            path.unlink(missing_ok=True)
        finally:
            lock.release()


def stale_claim_keys(names: Iterable[str]) -> list[str]:
    """The keys of the claim files among ``names`` (file names in an output folder)."""
    return [
        n[1 : -len(CLAIM_SUFFIX)] for n in names if n.startswith(".") and n.endswith(CLAIM_SUFFIX)
    ]
