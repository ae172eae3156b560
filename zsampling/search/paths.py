"""Path search: one starting noise, N draws of the noise a stochastic route adds on the way."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from zsampling.core.component import Component
from zsampling.core.search import Candidate, Trials, candidate_seed


class PathSearch(Component):
    """Best-of-N over *paths*: every candidate starts from the item's own noise and differs only
    in the seed of the noise added on the way (restart's re-noising, an ancestral or SDE
    solver's noise), so the verifier chooses among the paths of one start. Candidate 0 is plain
    sampling. A deterministic route (zigzag or standard with a deterministic solver) has one
    path: every candidate is the same sample, and the search buys nothing."""

    name: ClassVar[str] = "path-search"

    candidates: int = Field(4, ge=1, le=4096, description="N: paths tried per item.")
    evaluations: int | None = Field(
        None,
        ge=1,
        description="Budget in guided calls per item instead of candidates (each path's walk "
        "plus its verifier's calls): as many paths as it buys, at least one.",
    )

    def search(self, trials: Trials) -> None:
        items = range(len(trials.prompts))
        count = self.candidates
        if self.evaluations is not None:
            trials.run([[self._path(trials, i, 0)] for i in items])
            count = trials.affordable(self.evaluations)
            trials.run([[self._path(trials, i, k) for k in range(1, count)] for i in items])
            return
        trials.run([[self._path(trials, i, k) for k in range(count)] for i in items])

    @staticmethod
    def _path(trials: Trials, item: int, k: int) -> Candidate:
        seed = trials.seeds[item]
        path = candidate_seed(seed, k)
        return Candidate(path, {"seed": seed, "path_seed": path}, trials.noise(seed))
