"""Stopping a run on SIGTERM or SIGINT between writes, and saying where it stopped.

A batch scheduler (Slurm, Kubernetes, systemd) stops a job with SIGTERM; a user with Ctrl-C
(SIGINT). Either way the run must end promptly, leave every output it wrote complete and recorded,
and tell the user (even under ``--quiet``) how far it got and that a plain rerun resumes.

`stop_on_signals` turns both signals into `Stopped` (a `KeyboardInterrupt`, so no ``except
Exception`` in zsampling or a plugin swallows it, and `zsampling.runs.blame` lets it through).
Inside `writing` (an output's atomic write and its manifest line) the signal is held and raised
when the write is done: a stop never leaves a temporary file or an output without its line.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(KeyboardInterrupt):
    """The run was asked to stop by ``signum``; ``exit_code`` is what shells report (128 + n)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        self.exit_code = 128 + signum
        super().__init__(f"stopped by {self.name}")


class _State:
    writing = 0  # nesting depth of `writing` sections
    pending: int | None = None  # a signal that arrived during one


def _handler(signum: int, frame: FrameType | None) -> None:
    if _State.writing:
        _State.pending = signum
        return
    raise Stopped(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGINT raise `Stopped` while this is entered (main thread only; elsewhere a
    no-op, as Python allows handlers only there); the previous handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _State.pending = None


@contextmanager
def writing() -> Iterator[None]:
    """A section a stop must not cut: a signal arriving inside is raised when it ends."""
    _State.writing += 1
    try:
        yield
    finally:
        _State.writing -= 1
    if not _State.writing and _State.pending is not None:
        signum, _State.pending = _State.pending, None
        raise Stopped(signum)
