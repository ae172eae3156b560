"""Metric components (``[[metrics]]``): a score per generated item, higher is better."""

from zsampling.core.moved import moved
from zsampling.metrics.analytic import ClassPosterior, LogDensity
from zsampling.metrics.clip import ClipScore
from zsampling.metrics.digits import DigitAccuracy, DigitAlignment, DigitTypicality

# The 0.1.0 name of digit-typicality (deprecated).
__getattr__ = moved(
    __name__, "zsampling.metrics.digits", renamed={"DigitRealism": "DigitTypicality"}
)

__all__ = [
    "ClassPosterior",
    "ClipScore",
    "DigitAccuracy",
    "DigitAlignment",
    "DigitTypicality",
    "LogDensity",
]
