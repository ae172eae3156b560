"""Interval estimates for comparisons (scipy does the statistics)."""

from __future__ import annotations

from zsampling.core.extras import extra


def wilson(wins: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a winning rate ``wins / n`` (scipy's ``binomtest``)."""
    with extra("eval", "Wilson intervals"):
        from scipy.stats import binomtest

    if n == 0:
        return (0.0, 1.0)
    ci = binomtest(int(wins), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)
