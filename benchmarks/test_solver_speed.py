"""Each registered solver's per-step cost, as a share of one tiny-UNet call (ratios against a
baseline timed in the same run, see bench_util).

The core alone runs (path + CFG guider + the solver) over a model that returns a precomputed
prediction, so the model costs nothing and what is timed is the sampling machinery and the
solver's arithmetic; divided by the guided calls the run makes (a two-stage solver's extra call
counts as a step's worth of work) and by one real tiny-UNet call at batch 2. ``ddim_ratio`` is
the same for DDIM in the same rounds: the difference is the solver's own arithmetic.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from bench_util import GUIDANCE, Interleaved, verdict
from test_speed import PrecomputedModel

from zsampling import DDIM, Prediction, Standard, Uniform, sample
from zsampling.plugins.manager import default_registry
from zsampling.testing.tiny import latents_noise

STEPS = 20
SOLVERS = default_registry().names("solver")


@pytest.mark.parametrize("name", SOLVERS)
def test_solver_overhead_per_call(benchmark: Any, tiny_sd: Any, name: str) -> None:
    noise = latents_noise([0])
    cond, uncond = tiny_sd.encode(["a photo"])
    emb2 = torch.cat([uncond["encoder_hidden_states"], cond["encoder_hidden_states"]])
    x2 = torch.cat([noise, noise])
    levels = Uniform(steps=STEPS).sigmas(tiny_sd)
    t = tiny_sd.table.timestep(levels[5:6].repeat(2)).to(torch.float32)
    pred = tiny_sd.predict(x2, levels[5:6].repeat(2), {"encoder_hidden_states": emb2})
    free = PrecomputedModel(tiny_sd, Prediction(pred.x0.clone(), pred.eps.clone()))
    solver = default_registry().get("solver", name, "solver").cls()
    calls = sample(
        free, Standard(guidance=GUIDANCE), conditioning=(cond, uncond), noise=noise, sigmas=levels,
        solver=solver,
    ).counter.guided_calls  # fmt: skip

    def run(chosen: Any) -> Any:
        return lambda: sample(
            free,
            Standard(guidance=GUIDANCE),
            conditioning=(cond, uncond),
            noise=noise,
            sigmas=levels,
            solver=chosen,
        )

    @torch.inference_mode()
    def unet() -> Any:
        return tiny_sd.unet(x2, t, encoder_hidden_states=emb2, return_dict=False)[0]

    runs = Interleaved({"solver": run(solver), "ddim": run(DDIM()), "unet": unet})
    runs.warm_up()
    benchmark.pedantic(runs.round, rounds=9, iterations=1)
    ratio = runs.ratio("solver", "unet", scale=1.0 / calls)
    benchmark.extra_info.update(
        metric=f"core time per guided call with {name} / one tiny-UNet call at batch 2",
        setup=f"tiny SD UNet, 16x16 latents, 1 prompt + CFG, {STEPS} steps, precomputed model",
        **ratio,
        guided_calls=calls,
        ddim_ratio=runs.ratio("ddim", "unet", scale=1.0 / STEPS)["ratio"],
        **verdict(ratio["ratio"], 0.01, "<"),
    )
