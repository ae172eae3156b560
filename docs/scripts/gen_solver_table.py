"""The "which solver" table of docs/solvers.md: every registered solver's error at equal model
evaluations against a 500-step reference, and its measured convergence order.

For each solver (iterated from the registry, so plugins' and later built-ins' solvers are
included) and each budget of 5, 10, 20 and 40 guided model evaluations (NFE), the run takes as
many Karras steps as fit in the budget and is compared with the probability-flow ODE's solution
from the same starting noise: a 500-step Heun run (999 evaluations). The error is
``||x - x_ref|| / ||x_ref||`` over the whole batch of final latents. Stochastic solvers (marked
"stochastic") run with fixed seeds: their distance to the ODE solution is not a discretisation
error, only a measure of how far their samples wander from it.

The order is ``log(e_a / e_b) / log(steps_b / steps_a)`` between the 20 and 40 NFE runs on the
analytic model. Run ``python docs/scripts/gen_solver_table.py`` (a few minutes on one core) and
paste its tables into docs/solvers.md.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

import torch

from zsampling import Karras, Standard, sample
from zsampling.adapters.analytic import AnalyticModel, demo_mixture
from zsampling.adapters.digits import DigitsAdapter
from zsampling.plugins.manager import default_registry

NFES = (5, 10, 20, 40)
REFERENCE_STEPS = 500
GUIDANCE = 3.0

Run = Callable[[Any, int, int], Any]


def runner(model: Any, prompts: list[str]) -> Run:
    """``run(solver, steps, seed_offset)``: the sampling result from fixed starting noise."""
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn((len(prompts), *model.latent_shape()), generator=generator)
    noise = noise.to(torch.float64) if isinstance(model, AnalyticModel) else noise

    def run(solver: Any, steps: int, offset: int = 0) -> Any:
        return sample(
            model,
            Standard(guidance=GUIDANCE),
            prompts=prompts,
            noise=noise,
            seeds=[offset + i for i in range(len(prompts))],
            schedule=Karras(steps=steps),
            solver=solver,
        )

    return run


def steps_within(run: Run, solver: Any) -> Callable[[int], int]:
    """The most steps whose run makes at most ``nfe`` guided evaluations, from the calls of a 2-
    and a 3-step run (a solver's calls grow by a fixed number per step after the first)."""
    two, three = (run(solver, n, 0).counter.guided_calls for n in (2, 3))
    per = three - two
    return lambda nfe: max(1, 2 + (nfe - two) // per)


def errors(run: Run, solver: Any, reference: torch.Tensor) -> tuple[list[float], list[int]]:
    found, taken = [], []
    within = steps_within(run, solver)
    for nfe in NFES:
        steps = within(nfe)
        x = run(solver, steps, 0).latents.to(torch.float64)
        found.append(float((x - reference).norm() / reference.norm()))
        taken.append(steps)
    return found, taken


def order(found: list[float], taken: list[int]) -> float:
    return math.log(found[-2] / found[-1]) / math.log(taken[-1] / taken[-2])


def stochastic(run: Run, solver: Any) -> bool:
    """Whether the solver's result depends on the run's seeds (with the starting noise fixed)."""
    return not torch.equal(run(solver, 6, 0).latents, run(solver, 6, 1000).latents)


def table(name: str, model: Any, prompts: list[str], with_order: bool) -> list[str]:
    run = runner(model, prompts)
    heun = default_registry().get("solver", "heun", "solver").cls()
    reference = run(heun, REFERENCE_STEPS, 0).latents.to(torch.float64)
    head = " | ".join(f"{n} NFE" for n in NFES)
    rows = [
        f"| solver | steps at {', '.join(map(str, NFES))} NFE | {head} |"
        + (" order |" if with_order else ""),
        "|---|---|" + "---:|" * len(NFES) + ("---:|" if with_order else ""),
    ]
    for component in default_registry().components["solver"].values():
        solver = component.cls()
        found, taken = errors(run, solver, reference)
        label = f"`{component.name}`" + (" (stochastic)" if stochastic(run, solver) else "")
        cells = " | ".join(f"{e:.2e}" for e in found)
        tail = f" {order(found, taken):.2f} |" if with_order else ""
        rows.append(f"| {label} | {', '.join(map(str, taken))} | {cells} |{tail}")
    print(f"{name}:", file=sys.stderr)
    return rows


def main() -> None:
    torch.set_num_threads(1)
    analytic = AnalyticModel(demo_mixture())
    prompts = ["red", "green", "blue"] * 16
    for row in table("analytic", analytic, prompts, with_order=True):
        print(row)
    print()
    digits = DigitsAdapter().load()
    for row in table("digits", digits, [str(i % 10) for i in range(16)], with_order=False):
        print(row)


if __name__ == "__main__":
    main()
