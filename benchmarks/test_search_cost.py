"""(f) Search cost: the wall time per candidate of a best-of-N search against the time per item of
standard sampling at the same batch size, on the embedded digits model.

Both arms sample the same number of latent rows per model call (``rows`` = the batch size): the
search runs ``ITEMS`` prompts with ``N`` candidates each, standard sampling ``ITEMS * N`` items.
The search also pays for what standard sampling does not do: drawing each candidate's noise,
scoring every candidate with the digits verifier, and keeping the best. Target: within 10%.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from bench_util import Interleaved, verdict

from zsampling import (
    BestOfN,
    DigitVerifier,
    Standard,
    Uniform,
    candidate_seed,
    sample,
    search_sample,
)
from zsampling.adapters.digits import DigitsAdapter

N = 4
STEPS = 15


@pytest.mark.parametrize("items", [2, 8])
def test_search_time_per_candidate(benchmark: Any, items: int) -> None:
    torch.set_num_threads(1)
    model = DigitsAdapter().load()
    sampler, schedule = Standard(guidance=1.5), Uniform(steps=STEPS)
    prompts = [str(d % 10) for d in range(items)]
    rows = items * N
    seeds = [candidate_seed(s, k) for s in range(items) for k in range(N)]

    def searched() -> Any:
        return search_sample(
            model,
            sampler,
            BestOfN(candidates=N),
            DigitVerifier(),
            prompts=prompts,
            seeds=list(range(items)),
            rows=rows,
            schedule=schedule,
        )

    def standard() -> Any:
        each = [p for p in prompts for _ in range(N)]
        return sample(model, sampler, prompts=each, seeds=seeds, schedule=schedule)

    runs = Interleaved({"search": searched, "standard": standard})
    runs.warm_up()
    benchmark.pedantic(runs.round, rounds=9, iterations=1)
    ratio = runs.ratio("search", "standard")
    # the same candidates: standard sampling from each candidate's seed, in the same batch
    same = runs.outputs["standard"].latents.reshape(items, N, *model.latent_shape())
    found = runs.outputs["search"]
    for i, record in enumerate(found.records):
        assert torch.equal(found.latents[i], same[i, record["chosen"]])
    benchmark.extra_info.update(
        metric=f"wall time per candidate of a best-of-{N} search / per item of standard "
        "sampling, same rows per model call",
        setup=f"digits model, standard DDIM, T={STEPS}, {items} prompts x {N} candidates "
        f"= {rows} rows per call vs {rows} items, digit-verifier",
        **ratio,
        **runs.ms(),
        **verdict(ratio["ratio"], 1.10, "<="),
    )
