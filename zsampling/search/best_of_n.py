"""Best-of-N: sample N starting noises per item, keep the one the verifier scores highest."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from zsampling.core.component import Component
from zsampling.core.search import Candidate, Trials


class BestOfN(Component):
    """Random search (Ma et al., arXiv 2501.09732, section 3): ``candidates`` independent noises
    per item, all in one round. Candidate 0 is the item's own seed, so ``candidates = 1`` is plain
    sampling, and the chosen output's recorded seed regenerates it without a search (bit for bit
    at the search's batching, which ``zsampling reproduce`` repeats; to float rounding at
    another batch size)."""

    name: ClassVar[str] = "best-of-n"

    candidates: int = Field(4, ge=1, le=4096, description="N: starting noises tried per item.")
    evaluations: int | None = Field(
        None,
        ge=1,
        description="Budget in guided calls per item (each candidate's walk plus its verifier's "
        "calls, two rows to a call) instead of candidates: as many as it buys, at least one.",
    )

    def candidate(self, trials: Trials, item: int, k: int) -> Candidate:
        """The item's ``k``-th candidate: its ``k``-th drawn noise."""
        return trials.drawn(item, k)

    def search(self, trials: Trials) -> None:
        items = range(len(trials.prompts))
        count = self.candidates
        if self.evaluations is not None:
            trials.run([[self.candidate(trials, i, 0)] for i in items])  # measures the cost
            count = trials.affordable(self.evaluations)
            trials.run([[self.candidate(trials, i, k) for k in range(1, count)] for i in items])
            return
        trials.run([[self.candidate(trials, i, k) for k in range(count)] for i in items])
