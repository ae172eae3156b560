"""The `Verifier` protocol: how good each candidate of a search is, by a model of that quality.

A verifier looks like a metric (`zsampling.core.metric.Metric`: one float per item, higher is
better) but plays another part: a search (`zsampling.core.search`) *optimises* its score, so the
evaluation must never grade a search with the verifier it searched with (the over-optimisation
gap between the two is what docs/search.md reports). The kinds are kept apart so that a config
says which role a model plays.
"""

from __future__ import annotations

import math
from typing import ClassVar, Protocol, runtime_checkable

from torch import Tensor

from zsampling.core.errors import ComponentFault
from zsampling.core.model import ModelAdapter


@runtime_checkable
class Verifier(Protocol):
    """``[search.verifier]``: ``score(model, latents, prompts)`` gives one float per item (higher
    is better), from the final latents of the model that made them (decoding them if it needs
    images)."""

    name: ClassVar[str]

    def score(self, model: ModelAdapter, latents: Tensor, prompts: list[str]) -> Tensor: ...


def verified(
    verifier: Verifier, model: ModelAdapter, latents: Tensor, prompts: list[str]
) -> list[float]:
    """``verifier.score(...)`` as one finite float per row, or a `ComponentFault` naming it."""
    name = getattr(verifier, "name", type(verifier).__name__)
    raw = verifier.score(model, latents, prompts)
    try:
        values = [float(v) for v in raw]
    except (TypeError, ValueError) as exc:
        raise ComponentFault("verifier", name, f"returned {type(raw).__name__}: {exc}") from None
    if len(values) != latents.shape[0]:
        raise ComponentFault(
            "verifier",
            name,
            f"returned {len(values)} score(s) for {latents.shape[0]} candidates; expected one each",
        )
    bad = [v for v in values if not math.isfinite(v)]
    if bad:
        raise ComponentFault("verifier", name, f"returned the non-finite score {bad[0]}")
    return values
