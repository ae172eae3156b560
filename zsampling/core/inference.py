"""Gradient modes: where sampling runs without autograd, and how a component opts out.

On a small network the sampling loop's own tensor work is a percent of the network's time, and
``torch.inference_mode()`` skips autograd's bookkeeping (version counters, views' metadata) on
every operation: a tenth of the loop's time on the tiny SD (docs/benchmarks.md). A component
that differentiates through the model (a gradient-guided sampler or guider) says
``needs_grad = True`` and gets ``torch.no_grad()`` instead, inside which it turns gradients on
with ``torch.enable_grad()`` where it needs them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import ParamSpec, TypeVar

import torch

P = ParamSpec("P")
R = TypeVar("R")


def gradient_mode(*components: object) -> AbstractContextManager[object]:
    """``torch.inference_mode()``, or ``torch.no_grad()`` when a component ``needs_grad``."""
    if any(getattr(c, "needs_grad", False) for c in components):
        return torch.no_grad()
    return torch.inference_mode()


def inference(fn: Callable[P, R]) -> Callable[P, R]:
    """``@torch.inference_mode()`` for an adapter's network calls, without its cost where the
    caller is in inference mode already (a run's loop): entering the mode again is a context
    manager per call, a few microseconds each on the hot path."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if torch.is_inference_mode_enabled():
            return fn(*args, **kwargs)
        with torch.inference_mode():
            return fn(*args, **kwargs)

    return wrapper
