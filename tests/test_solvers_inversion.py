"""Every solver in both directions: deterministic solvers invert with their own formula (a round
trip on the analytic model closes at the solver's order), and zigzag and restart run with every
registered solver on the analytic and digits models, the zag being the documented one (the
solver's step upwards with no history: an isolated zag, docs/solvers.md)."""

from __future__ import annotations

import itertools
import math
from functools import cache
from typing import Any

import pytest
import torch
from solver_parity import FlowAnalytic
from test_convergence import single_gaussian

from zsampling import CFG, Restart, SamplingPath, StepEvent, Uniform, Zigzag, sample
from zsampling.adapters.analytic import AnalyticModel
from zsampling.adapters.digits import DigitsAdapter
from zsampling.plugins.builtins import BUILTINS

ROUND_TRIP_ORDER = {
    # what halving the step must gain (log2 of the error ratio), measured on the round trip:
    # a symmetric one-step method closes at one more order than it has, and a multistep
    # method's warm-up steps keep it at 2
    "ddim": 0.9, "euler": 0.9, "gradient-estimation": 0.9,
    "heun": 2.9, "dpm2": 2.9, "dpmpp-2s": 2.9,
    "dpmpp-2m": 2.0, "lms": 2.0, "deis": 2.0, "ipndm": 1.7, "res-multistep": 2.0, "unipc": 1.7,
}  # fmt: skip
SOLVERS = [cls.name for cls in BUILTINS["solver"]]  # type: ignore[attr-defined]


def solver(name: str, **settings: Any) -> Any:
    [cls] = [c for c in BUILTINS["solver"] if c.name == name]  # type: ignore[attr-defined]
    return cls(**settings)


def gaussian(process: str) -> AnalyticModel:
    """One Gaussian: a smooth ODE, where every solver is in its asymptotic regime early."""
    model = single_gaussian()
    return FlowAnalytic(model.mixture) if process == "flow" else model


def round_trip(name: str, process: str, steps: int) -> float:
    """Denoise ``steps`` steps from sigma 10 to 0.1, invert back: the distance to the start."""
    model = gaussian(process)
    sigmas = torch.logspace(1.0, -1.0, steps + 1, dtype=torch.float64)
    start = torch.randn(50, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    guider = CFG().bind(model, *model.encode(["only"] * 50))
    path = SamplingPath(sigmas, model.process, {"main": guider}, solver(name))
    x = start
    for i in range(steps):
        x = path.denoise(x, i, 1.0)
    for i in reversed(range(steps)):
        x = path.invert(x, i, 1.0)
    return float((x - start).abs().max())


@pytest.mark.parametrize("process", ["vp", "flow"])
@pytest.mark.parametrize("name", list(ROUND_TRIP_ORDER))
def test_round_trip_closes_at_the_solvers_order(name: str, process: str) -> None:
    coarse, fine = round_trip(name, process, 16), round_trip(name, process, 32)
    assert fine < 0.2
    assert math.log2(coarse / fine) >= ROUND_TRIP_ORDER[name], (coarse, fine)


@cache
def digits() -> Any:
    return DigitsAdapter().load()


def model_of(kind: str) -> tuple[Any, list[str]]:
    if kind == "digits":
        return digits(), ["3", "8"]
    return AnalyticModel(gaussian("vp").mixture), ["only", "only"]


def moves(model: Any, prompts: list[str], sampler: Any, name: str) -> tuple[Any, list[StepEvent]]:
    seen: list[StepEvent] = []
    result = sample(
        model,
        sampler,
        prompts=prompts,
        seeds=[0, 1],
        schedule=Uniform(steps=5),
        solver=solver(name),
        observers=[seen.append],
    )
    return result, seen


@pytest.mark.parametrize("kind", ["analytic", "digits"])
@pytest.mark.parametrize("name", SOLVERS)
def test_zigzag_with_every_solver_zags_by_its_isolated_inversion(name: str, kind: str) -> None:
    model, prompts = model_of(kind)
    zigzag = Zigzag(guidance=3.0, inversion_guidance=1.0, zigzag_steps=3)
    result, seen = moves(model, prompts, zigzag, name)
    assert bool(torch.isfinite(result.latents).all())
    assert [e.kind for e in seen] == ["denoise", "invert", "denoise"] * 3 + ["denoise"] * 2
    # each zag equals the solver's step upwards on a fresh path (no history), from the
    # latent the denoise before it reached
    levels = result.sigmas
    for before, zag in itertools.pairwise(seen):
        if zag.kind != "invert":
            continue
        guider = CFG().bind(model, *model.encode(prompts))
        fresh = SamplingPath(levels, model.process, {"main": guider}, solver(name))
        again = fresh.invert(before.x, zag.dst, 1.0)
        torch.testing.assert_close(zag.x, again, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["analytic", "digits"])
@pytest.mark.parametrize("name", SOLVERS)
def test_restart_runs_with_every_solver(name: str, kind: str) -> None:
    model, prompts = model_of(kind)
    restart = Restart(guidance=3.0, restart_min=0.3, restart_max=3.0, rounds=2)
    result, seen = moves(model, prompts, restart, name)
    assert bool(torch.isfinite(result.latents).all())
    assert sum(e.kind == "renoise" for e in seen) == 2
    again, _ = moves(model, prompts, restart, name)  # seeded: the same run twice
    torch.testing.assert_close(again.latents, result.latents, rtol=0, atol=0)
