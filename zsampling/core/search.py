"""Search over starting noises: the `SearchStrategy` protocol and the `Trials` it proposes to.

A search runs any reflective sampler (standard, zigzag, Z², restart, ...) from several starting
noises per item, scores every result with a verifier (`zsampling.core.verifier`) and keeps, for
each item, the best-scoring candidate it tried. A strategy only *proposes* candidates
(`SearchStrategy.search` calls `Trials.run` once per round); how they are sampled, batched,
scored and recorded is here, the same for every strategy.

Every candidate is a pure function of its item's seed and the strategy's settings (its recipe:
the seeds its noise is drawn from), so a search is reproducible bit for bit, and the chosen
candidate's recipe is recorded in the output's metadata next to every score and the evaluations
spent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from zsampling.core.errors import InvalidArgument
from zsampling.core.guidance import EvaluationCounter, counted
from zsampling.core.model import ModelAdapter
from zsampling.core.sampler import ReflectiveSampler
from zsampling.core.sampling import SampleResult, initial_noise, sample
from zsampling.core.verifier import Verifier, verified


def candidate_seed(seed: int, k: int) -> int:
    """The seed of an item's ``k``-th drawn noise: the item's own seed for ``k = 0`` (so a search
    of one candidate is plain sampling), else a 63-bit hash of ``(seed, k)`` by numpy's
    `SeedSequence` (different items never share candidates)."""
    if k == 0:
        return int(seed)
    state = np.random.SeedSequence([int(seed), int(k)]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & (2**63 - 1)


@dataclass(frozen=True)
class Candidate:
    """One starting noise to try for an item: the seed its later noise (restart's) comes from,
    its recipe (JSON data saying how its noise was made) and the noise itself (one latent)."""

    seed: int
    recipe: dict[str, Any]
    noise: Tensor


@dataclass
class Tried:
    """What an item's search found so far: every candidate's recipe and score, and the best."""

    recipes: list[dict[str, Any]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    best: int = -1
    latents: Tensor | None = None
    candidate: Candidate | None = None

    def add(self, candidate: Candidate, score: float, latents: Tensor) -> None:
        self.recipes.append(candidate.recipe)
        self.scores.append(score)
        if self.best < 0 or score > self.scores[self.best]:  # ties keep the earlier candidate
            self.best, self.latents, self.candidate = len(self.scores) - 1, latents, candidate

    @property
    def best_score(self) -> float:
        return self.scores[self.best] if self.best >= 0 else -math.inf


Run = Callable[[list[str], list[int], Tensor], SampleResult]
"""Sample rows: prompts, the seeds of their generators, their starting noise."""


class Trials:
    """What a strategy proposes to: the items, their noises, and ``run`` (sample and score)."""

    def __init__(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        shape: Sequence[int],
        dtype: torch.dtype,
        run: Run,
        score: Callable[[Tensor, list[str]], list[float]],
        rows: int,
    ) -> None:
        self.prompts = list(prompts)
        self.seeds = [int(s) for s in seeds]
        self.shape = tuple(shape)
        self.dtype = dtype
        self._run, self._score, self.rows = run, score, rows
        self.tried = [Tried() for _ in self.prompts]
        self.counter = EvaluationCounter()
        self.rows_per_item = [0.0] * len(self.prompts)
        self.guided_calls_per_candidate = 0.0
        self.verifying = EvaluationCounter()  # the verifier's own model calls (search_sample)

    def noise(self, seed: int) -> Tensor:
        """The starting noise plain sampling draws from ``seed`` (the same bits)."""
        return initial_noise(self.shape, [seed], self.dtype)[0][0]

    def drawn(self, item: int, k: int) -> Candidate:
        """The item's ``k``-th drawn candidate (``k = 0``: its own seed's noise)."""
        seed = candidate_seed(self.seeds[item], k)
        return Candidate(seed, {"seed": seed}, self.noise(seed))

    def run(self, proposals: Sequence[Sequence[Candidate]]) -> list[list[float]]:
        """Sample and score ``proposals[i]``, candidates for item ``i`` (all items' candidates
        batched together, ``rows`` latent rows per model call); return their scores."""
        if len(proposals) != len(self.prompts):
            raise InvalidArgument(
                "proposals", len(proposals), f"one list per item ({len(self.prompts)})"
            )
        flat = [(i, c) for i, group in enumerate(proposals) for c in group]
        scores: list[list[float]] = [[] for _ in proposals]
        for start in range(0, len(flat), self.rows):
            chunk = flat[start : start + self.rows]
            prompts = [self.prompts[i] for i, _ in chunk]
            noise = torch.stack([c.noise for _, c in chunk])
            result = self._run(prompts, [c.seed for _, c in chunk], noise)
            values = self._score(result.latents, prompts)
            self._count(result.counter, [i for i, _ in chunk])
            for k, (i, c) in enumerate(chunk):
                self.tried[i].add(c, values[k], result.latents[k])
                scores[i].append(values[k])
        return scores

    @property
    def calls_per_candidate(self) -> float:
        """What one candidate has cost so far, in guided calls: its walk's guided calls plus its
        verifier's model rows, two to a guided call (0 before anything ran)."""
        tried = sum(len(t.scores) for t in self.tried)
        verifier = self.verifying.rows / 2 / tried if tried else 0.0
        return self.guided_calls_per_candidate + verifier

    def affordable(self, evaluations: int) -> int:
        """How many candidates per item a budget of ``evaluations`` guided calls per item buys at
        the cost measured so far (at least one: the item's own noise)."""
        per = self.calls_per_candidate
        if per <= 0:
            raise InvalidArgument(
                "search.evaluations", evaluations, "a budget measured after a round ran"
            )
        return max(1, int(evaluations // per))

    def _count(self, counter: EvaluationCounter, items: list[int]) -> None:
        for key, value in counter.as_dict().items():
            setattr(self.counter, key, getattr(self.counter, key) + value)
        for i in items:
            self.rows_per_item[i] += counter.rows / len(items)
        self.guided_calls_per_candidate = float(counter.guided_calls)


@runtime_checkable
class SearchStrategy(Protocol):
    """``[search]``: ``search(trials)`` proposes candidates to ``trials.run``, round after round;
    each item keeps the best-scoring candidate of all it tried."""

    name: ClassVar[str]

    def search(self, trials: Trials) -> None: ...


@dataclass
class SearchResult:
    """The chosen latents of each item, what they cost, and each item's search record."""

    latents: Tensor
    counter: EvaluationCounter
    records: list[dict[str, Any]]


def search_sample(
    model: ModelAdapter,
    sampler: ReflectiveSampler,
    strategy: SearchStrategy,
    verifier: Verifier,
    *,
    prompts: Sequence[str],
    seeds: Sequence[int],
    rows: int = 8,
    **options: Any,
) -> SearchResult:
    """`zsampling.core.sampling.sample` searched over starting noises: ``strategy`` proposes,
    each candidate is sampled with ``sampler`` (``options`` are `sample`'s: schedule, solver,
    guider, negative_prompts, extra_models, observers) at most ``rows`` per batch, ``verifier``
    scores it, and each item keeps its best. The verifier's own model calls are counted apart
    (``verifier_rows`` in each record)."""
    if len(seeds) != len(prompts):
        raise InvalidArgument("seeds", list(seeds), f"one seed per prompt ({len(prompts)})")
    negative = options.pop("negative_prompts", None)
    negative_of = dict(zip(prompts, negative, strict=True)) if negative else None
    verifying = EvaluationCounter()
    judged = counted(model, verifying)  # not the sampling counter: reported apart

    def run(texts: list[str], row_seeds: list[int], noise: Tensor) -> SampleResult:
        neg = [negative_of[t] for t in texts] if negative_of else None
        return sample(
            model,
            sampler,
            prompts=texts,
            negative_prompts=neg,
            seeds=row_seeds,
            noise=noise,
            **options,
        )

    def score(latents: Tensor, texts: list[str]) -> list[float]:
        return verified(verifier, judged, latents, texts)

    trials = Trials(prompts, seeds, model.latent_shape(), model.dtype, run, score, max(1, rows))
    trials.verifying = verifying
    strategy.search(trials)
    records = [_record(trials, i, verifier, strategy, verifying) for i in range(len(prompts))]
    missing = [i for i, t in enumerate(trials.tried) if t.latents is None]
    if missing:
        name = getattr(strategy, "name", type(strategy).__name__)
        raise InvalidArgument(
            "search",
            name,
            f"a strategy that tries at least one candidate per item (items {missing} got none)",
        )
    latents = torch.stack([t.latents for t in trials.tried if t.latents is not None])
    return SearchResult(latents, trials.counter, records)


def _record(
    trials: Trials,
    i: int,
    verifier: Verifier,
    strategy: SearchStrategy,
    verifying: EvaluationCounter,
) -> dict[str, Any]:
    tried = trials.tried[i]
    total = max(1, sum(len(t.scores) for t in trials.tried))
    return {
        "strategy": getattr(strategy, "name", type(strategy).__name__),
        "verifier": getattr(verifier, "name", type(verifier).__name__),
        "candidates": len(tried.scores),
        "chosen": tried.best,
        "chosen_seed": tried.candidate.seed if tried.candidate else None,
        "recipe": tried.recipes[tried.best] if tried.best >= 0 else None,
        "scores": [round(s, 6) for s in tried.scores],
        "score": round(tried.best_score, 6),
        "sampling_rows": round(trials.rows_per_item[i], 3),
        "guided_calls": round(trials.guided_calls_per_candidate * len(tried.scores), 3),
        "verifier_rows": round(verifying.rows * len(tried.scores) / total, 3),
    }
