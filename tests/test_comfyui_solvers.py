"""The deterministic solvers against the vendored ComfyUI's k-diffusion functions (GPL-3.0: run,
never copied), on the exact analytic mixture: VP (the sigma frame, as ComfyUI runs SD) and flow
(the t frame, as ComfyUI runs SD3/FLUX), at 10 and 25 steps, with the same noise and levels."""

from __future__ import annotations

from typing import Any

import pytest
from comfy_tiny import import_comfyui
from solver_parity import denoiser, ours, reference_start

from zsampling.plugins.manager import default_registry
from zsampling.testing.compare import relative_max as rel

import_comfyui()

import comfy.k_diffusion.sampling as ks  # noqa: E402
import comfy.model_sampling  # noqa: E402

REFERENCES: dict[str, tuple[str, dict[str, Any], float]] = {
    # solver: (ComfyUI function, its arguments, relative tolerance)
    "heun": ("sample_heun", {}, 1e-5),
    "dpm2": ("sample_dpm_2", {}, 1e-5),
    "lms": ("sample_lms", {}, 1e-5),
    "dpmpp-2s": ("sample_dpmpp_2s_ancestral", {"eta": 0.0}, 1e-5),
    "ipndm": ("sample_ipndm", {}, 1e-5),
    "deis": ("sample_deis", {}, 1e-5),
    "res-multistep": ("sample_res_multistep", {}, 1e-5),
    "gradient-estimation": ("sample_gradient_estimation", {}, 1e-5),
}


class Wrapped:
    """A denoiser with the attribute chain ComfyUI's samplers look up to tell flow models."""

    def __init__(self, process: str) -> None:
        self.fn = denoiser(process)
        sampling = comfy.model_sampling.CONST() if process == "flow" else object()
        self.inner_model = type("Inner", (), {"inner_model": type("M", (), {})()})()
        self.inner_model.inner_model.model_sampling = sampling

    def __call__(self, x: Any, sigma: Any, **extra: Any) -> Any:
        return self.fn(x, sigma, **extra)


@pytest.mark.parametrize("process", ["vp", "flow"])
@pytest.mark.parametrize("steps", [10, 25])
@pytest.mark.parametrize("solver", list(REFERENCES))
def test_solver_equals_comfyuis(solver: str, steps: int, process: str) -> None:
    function, kwargs, tol = REFERENCES[solver]
    x, taus = reference_start(process, steps)
    ref = getattr(ks, function)(Wrapped(process), x, taus, disable=True, **kwargs)
    got = ours(process, steps, default_registry().get("solver", solver, "solver").cls())
    assert rel(got, ref) <= tol, (solver, process, steps, rel(got, ref))
