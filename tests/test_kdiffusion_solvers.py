"""The deterministic solvers k-diffusion has, against k-diffusion itself (MIT; its own CI venv,
.ci/run-kdiffusion), on the exact analytic mixture in the sigma frame at 10 and 25 steps."""

from __future__ import annotations

from typing import Any

import pytest
from solver_parity import denoiser, ours, reference_start

from zsampling.plugins.manager import default_registry
from zsampling.testing.compare import relative_max as rel

sampling = pytest.importorskip("k_diffusion.sampling")

REFERENCES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    # solver: (k-diffusion function, its arguments, the solver's settings)
    "heun": ("sample_heun", {}, {}),
    "dpm2": ("sample_dpm_2", {}, {}),
    "lms": ("sample_lms", {}, {"final_step": "polynomial"}),  # k-diffusion 0.1's last step
    "dpmpp-2s": ("sample_dpmpp_2s_ancestral", {"eta": 0.0}, {}),
}


@pytest.mark.parametrize("steps", [10, 25])
@pytest.mark.parametrize("solver", list(REFERENCES))
def test_solver_equals_k_diffusions(solver: str, steps: int) -> None:
    function, kwargs, settings = REFERENCES[solver]
    x, sigmas = reference_start("vp", steps)
    ref = getattr(sampling, function)(denoiser("vp"), x, sigmas, disable=True, **kwargs)
    got = ours("vp", steps, default_registry().get("solver", solver, "solver").cls(**settings))
    assert rel(got, ref) <= 1e-5, rel(got, ref)
