"""Measure the stochastic and ancestral solvers against k-diffusion or ComfyUI, same noise.

Run from the repository root, in the reference's venv (see ``.ci/run-kdiffusion`` and
``.ci/run-comfyui``)::

    python docs/scripts/stochastic_parity.py kdiffusion
    python docs/scripts/stochastic_parity.py comfyui
    python docs/scripts/stochastic_parity.py diffusers   # the main venv

Each prints rows of the parity table in ``docs/solvers.md``: the largest difference of the final
latents relative to the reference's largest magnitude, at 10 and 25 steps. Setup: the analytic
three-class mixture with CFG 3, four items seeded 11-14, Karras levels (0.03-14.6) for the SD-type
(EPS) rows, ``t`` from 0.97 to 0 in equal steps for the flow rows; the reference's
``noise_sampler`` draws from the same per-item generators as the run
(tests/stochastic_reference.py), or for ``noise="brownian"`` is k-diffusion's Brownian tree on
``[0, sigma_0]`` seeded with the run's per-item entropies.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from stochastic_reference import relative


def label(solver: Any) -> str:
    settings = ", ".join(f"{k}={v}" for k, v in solver.model_dump(exclude_defaults=True).items())
    return f"`{solver.name}`" + (f" ({settings})" if settings else "")


def main(reference: str) -> None:
    if reference == "diffusers":
        diffusers_rows()
        return
    if reference == "kdiffusion":
        from test_kdiffusion_stochastic import BROWNIAN, CASES, brownian_pair, pair

        runs = [(c, "EPS", lambda s, c=c: pair(*c, s)) for c in CASES]
        runs += [((*c, {}), "EPS", lambda s, c=c: brownian_pair(*c, s)) for c in BROWNIAN]
        name = "k-diffusion"
    else:
        from test_comfyui_stochastic import CASES, NOT_FOR_FLOW
        from test_comfyui_stochastic import pair as comfy_pair

        runs = [
            (c, kind, lambda s, c=c, flow=flow: comfy_pair(*c, s, flow))
            for c in CASES
            for kind, flow in (("EPS", False), ("flow", True))
            if not (flow and c[1] in NOT_FOR_FLOW)
        ]
        name = "ComfyUI"
    for (solver, function, _), kind, run in runs:
        diffs = [f"{relative(*run(steps)):.1e}" for steps in (10, 25)]
        print(f"| {label(solver)} | {name} `{function}` | {kind} | {' | '.join(diffs)} |")


def diffusers_rows() -> None:
    """The tiny SD pipeline (eps and v) against diffusers' stochastic schedulers, 10 steps."""
    import tempfile

    from test_solvers_stochastic_diffusers import CASES, relative_difference
    from tiny_pipelines import load_tiny, write_tiny_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("sd", "sd-v"):
            model = load_tiny(write_tiny_pipeline(Path(tmp) / kind, kind))
            for case in CASES:
                diff = f"{relative_difference(model, case):.1e} | not run"
                scheduler = case[1].__name__
                print(f"| {label(case[3])} | diffusers `{scheduler}` | tiny {kind} | {diff} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "kdiffusion")
