"""`FiniteWatch`: the path's NaN/inf check, kept on the latents' device and read in batches.

Reading whether a CUDA tensor is finite makes the host wait for the device (a synchronisation),
which stalls the queue of kernels the next steps would already be launching. So each move of
the path only records one device-side number, the latent's largest magnitude (``inf``-norm, in
float64: NaN and inf propagate through it and it never overflows), and the numbers are read in
one transfer every `READ_EVERY` moves and when sampling ends (`SamplingPath.finish`). A
non-finite latent is reported then, by the first move that made one: the error names that move
and its levels, as a check at every step would, while the moves after it ran on for at most
`READ_EVERY - 1` moves. A sampler never sees the result of the check, only the run's end does.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from zsampling.core.errors import NonFiniteLatents

READ_EVERY = 32
"""Moves between two reads of the recorded magnitudes (one host synchronisation each)."""


class FiniteWatch:
    """Per-move magnitudes of the path's latents, on their device, until they are read."""

    def __init__(self, hint: str = "", every: int = READ_EVERY) -> None:
        self.hint = hint
        self.every = every
        self.reads = 0
        self._norms: list[Tensor] = []
        self._moves: list[tuple[str, int, int, float, float, int]] = []

    def note(
        self, x: Tensor, kind: str, src: int, dst: int, sigma_src: float, sigma_dst: float
    ) -> None:
        """Record move ``kind`` ``src -> dst`` that made ``x``; read every `every` moves."""
        self._norms.append(torch.linalg.vector_norm(x, math.inf, dtype=torch.float64))
        self._moves.append((kind, src, dst, sigma_src, sigma_dst, x.numel()))
        if len(self._norms) >= self.every:
            self.read()

    def read(self) -> None:
        """Read the recorded magnitudes (one synchronisation); `NonFiniteLatents` naming the first
        move whose latent was not finite."""
        if not self._norms:
            return
        norms, moves = self._norms, self._moves
        self._norms, self._moves = [], []
        self.reads += 1
        values = torch.stack(norms).tolist()
        bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
        if bad is None:
            return
        kind, src, dst, a, b, size = moves[bad]
        message = (
            f"latent after {kind} step {src}->{dst} (sigma {a:.4g} -> {b:.4g}) has non-finite "
            f"value(s) (NaN or inf) among its {size}"
        )
        raise NonFiniteLatents(message + (f"; {self.hint}" if self.hint else ""))
