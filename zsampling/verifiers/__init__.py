"""Verifiers (``[search.verifier]``): what a search optimises, one score per candidate."""

from zsampling.verifiers.clip import ClipVerifier
from zsampling.verifiers.digits import DigitVerifier
from zsampling.verifiers.implicit import ImplicitClassifier
from zsampling.verifiers.reward import ImageReward

__all__ = ["ClipVerifier", "DigitVerifier", "ImageReward", "ImplicitClassifier"]
