"""Zero-order search: from the best noise so far, try its neighbours; move if one is better."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from pydantic import Field
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.search import Candidate, Trials, candidate_seed


def neighbour(pivot: Tensor, direction: Tensor, step: float) -> Tensor:
    """``(pivot + step * direction) / sqrt(1 + step^2)``: for independent standard normal pivot
    and direction, again standard normal (a neighbour is a valid starting noise), at expected
    distance ``step * sqrt(2 / (1 + step^2)) * sqrt(d)``-ish from the pivot for small steps."""
    mixed = pivot.to(torch.float32) + step * direction.to(torch.float32)
    return (mixed / math.sqrt(1.0 + step * step)).to(pivot.dtype)


class ZeroOrder(Component):
    """Zero-order search (Ma et al., arXiv 2501.09732, section 3): the item's own noise is the
    first pivot; each round tries ``neighbours`` noises around the best candidate found so far,
    which becomes the pivot of the next round when one of them scores higher. ``1 + rounds *
    neighbours`` candidates per item. The recipe of a neighbour is its pivot's plus one move
    (the seed of the direction drawn and the step), so every noise can be rebuilt from seeds."""

    name: ClassVar[str] = "zero-order"

    rounds: int = Field(2, ge=1, le=256, description="Rounds of neighbours around the pivot.")
    neighbours: int = Field(2, ge=1, le=4096, description="Neighbours tried per round.")
    step: float = Field(
        0.5, gt=0, le=10, description="lambda: how far a neighbour moves from the pivot."
    )

    evaluations: int | None = Field(
        None,
        ge=1,
        description="Budget in guided calls per item instead of rounds: as many rounds as it "
        "buys after the item's own noise (each candidate's walk plus its verifier's calls).",
    )

    def search(self, trials: Trials) -> None:
        items = range(len(trials.prompts))
        trials.run([[trials.drawn(i, 0)] for i in items])
        rounds = self.rounds
        if self.evaluations is not None:
            rounds = (trials.affordable(self.evaluations) - 1) // self.neighbours
        for r in range(rounds):
            proposals = []
            for i in items:
                pivot = trials.tried[i].candidate
                assert pivot is not None  # every item tried its own noise first
                ks = range(1 + r * self.neighbours, 1 + (r + 1) * self.neighbours)
                proposals.append(
                    [self._move(trials, pivot, candidate_seed(trials.seeds[i], k)) for k in ks]
                )
            trials.run(proposals)

    def _move(self, trials: Trials, pivot: Candidate, seed: int) -> Candidate:
        noise = neighbour(pivot.noise, trials.noise(seed), self.step)
        moves = [*pivot.recipe.get("moves", []), {"seed": seed, "step": self.step}]
        return Candidate(seed, {"seed": pivot.recipe["seed"], "moves": moves}, noise)
