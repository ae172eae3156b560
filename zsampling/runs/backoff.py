"""Out-of-memory backoff: a batch that does not fit is sampled again in halves, down to one item.

``run.batch_size`` is chosen before the model is seen; 8 items fit SD 1.5 on most cards and not
SDXL or FLUX at 1024 px. A night's run should not end on the first batch for that. When sampling a
batch runs out of memory, the run halves the batch size it uses (``8 -> 4 -> 2 -> 1``), says so
once per halving (an `OutOfMemoryBackoff` warning), and keeps the smaller size for the rest of the
run. Nothing of the failed batch was written (outputs are written after their batch is sampled),
so nothing is written twice.

The halves are cut where a run with the smaller ``run.batch_size`` would cut them
(`zsampling.runs.batches`), so every output is bit for bit the one such a run writes: a batch's
rounding depends on its size, an item's noise does not.

What counts as out of memory (`is_out_of_memory`): ``torch.OutOfMemoryError`` (CUDA, MPS, XPU),
Python's ``MemoryError``, and a ``RuntimeError`` whose message is an allocator's refusal ("out of
memory", the CPU allocator's "can't allocate memory" / "not enough memory"). Other errors, and an
out-of-memory error at batch size 1, end the run as before (`zsampling.runs.blame`'s advice).
"""

from __future__ import annotations

import gc
import sys
import warnings

ALLOCATOR_REFUSALS = ("out of memory", "can't allocate memory", "not enough memory")


class OutOfMemoryBackoff(UserWarning):
    """A run halved its batch size after running out of memory (the CLI prints it once)."""


def is_out_of_memory(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is an allocator's refusal."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, MemoryError):
            return True
        oom = getattr(sys.modules.get("torch"), "OutOfMemoryError", None)
        if oom is not None and isinstance(exc, oom):
            return True
        if isinstance(exc, RuntimeError) and any(r in str(exc) for r in ALLOCATOR_REFUSALS):
            return True
        exc, seen = exc.__cause__, seen + 1
    return False


def halved(rows: int, device: str) -> int:
    """The batch size to use after a batch of ``rows`` items ran out of memory on ``device``
    (announced as an `OutOfMemoryBackoff`), with the allocator's cached blocks freed."""
    size = max(1, rows // 2)
    warnings.warn(
        OutOfMemoryBackoff(
            f"out of memory sampling a batch of {rows} items on {device}: sampling batches of "
            f"{size} from now on (the outputs are those of run.batch_size = {size}); set "
            f"run.batch_size = {size} to start there"
        ),
        stacklevel=2,
    )
    free_cached_memory()
    return size


def free_cached_memory() -> None:
    """Drop what the failed batch left: its tensors (unreachable once the exception is gone)
    and the blocks the CUDA allocator keeps cached for reuse."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
