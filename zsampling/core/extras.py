"""Optional dependencies: which extra brings each, and a clear error when one is missing.

The core install is what a diffusers or ComfyUI user needs. Evaluation, plots and the digits
data (scikit-learn, scipy, matplotlib) come with ``zsampling[eval]``, ``accelerate launch`` runs
with ``zsampling[distributed]``; ``zsampling[dev]`` pulls them all. Code that needs one imports
it inside ``with extra("eval", "what it is for"):`` so that a user without it reads which extra to
install, not a ``ModuleNotFoundError`` from deep inside zsampling.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from zsampling.core.errors import ZSamplingError

DISTRIBUTIONS: dict[str, str] = {
    "sklearn": "scikit-learn",
    "scipy": "scipy",
    "matplotlib": "matplotlib",
    "accelerate": "accelerate",
}
"""Top-level module -> the distribution pip installs it from (the optional ones only)."""


class MissingExtra(ZSamplingError, ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""

    def __init__(self, distribution: str, extra: str, purpose: str) -> None:
        self.distribution = distribution
        self.extra = extra
        super().__init__(
            f"{purpose} needs {distribution}, which is not installed: it comes with the "
            f"'{extra}' extra (pip install \"zsampling[{extra}]\")"
        )


@contextmanager
def extra(name: str, purpose: str) -> Iterator[None]:
    """Turn a missing optional module imported in this block into a `MissingExtra` naming the
    extra ``name``; any other import error passes through unchanged."""
    try:
        yield
    except ModuleNotFoundError as exc:
        root = (exc.name or "").split(".")[0]
        if root not in DISTRIBUTIONS:
            raise
        raise MissingExtra(DISTRIBUTIONS[root], name, purpose) from exc
