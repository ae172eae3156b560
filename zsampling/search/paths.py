"""Path search: one starting noise, N draws of the noise a stochastic route adds on the way."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from zsampling.core.search import Candidate, Trials, candidate_seed
from zsampling.search.best_of_n import BestOfN


class PathSearch(BestOfN):
    """Best-of-N over *paths*: every candidate starts from the item's own noise and differs only
    in the seed of the noise added on the way (restart's re-noising, an ancestral or SDE
    solver's noise), so the verifier chooses among the paths of one start. Candidate 0 is plain
    sampling. A deterministic route (zigzag or standard with a deterministic solver) has one
    path: every candidate is the same sample, and the search buys nothing."""

    name: ClassVar[str] = "path-search"

    candidates: int = Field(4, ge=1, le=4096, description="N: paths tried per item.")

    def candidate(self, trials: Trials, item: int, k: int) -> Candidate:
        """The item's own noise, with the ``k``-th seed for the noise added on the way."""
        seed = trials.seeds[item]
        path = candidate_seed(seed, k)
        return Candidate(path, {"seed": seed, "path_seed": path}, trials.noise(seed))
