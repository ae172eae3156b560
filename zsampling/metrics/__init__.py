"""Metric components (``[[metrics]]``): a score per generated item, higher is better."""

from zsampling.metrics.analytic import ClassPosterior, LogDensity
from zsampling.metrics.clip import ClipScore
from zsampling.metrics.digits import DigitAccuracy, DigitAlignment, DigitTypicality

__all__ = [
    "ClassPosterior",
    "ClipScore",
    "DigitAccuracy",
    "DigitAlignment",
    "DigitTypicality",
    "LogDensity",
]
