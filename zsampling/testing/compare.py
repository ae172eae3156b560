"""How far apart two results are, as the parity tests and benchmarks measure it.

Two measures, both in float64 whatever the inputs' dtype: the relative norm of the difference
(a whole-tensor distance, for results that round differently everywhere, such as half-precision
runs) and the largest difference relative to the reference's largest entry (a bound on every
value, for results that must agree entry by entry).
"""

from __future__ import annotations

from torch import Tensor


def relative_norm(a: Tensor, b: Tensor) -> float:
    """``||a - b|| / ||b||``, in float64."""
    return float((a.double() - b.double()).norm() / b.double().norm())


def relative_max(a: Tensor, b: Tensor) -> float:
    """``max |a - b| / max |b|``, in float64."""
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())
