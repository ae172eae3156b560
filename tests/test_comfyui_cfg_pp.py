"""CFG++ (guider ``cfg-pp``) against ComfyUI's own ``euler_cfg_pp`` and ``dpmpp_2m_cfg_pp``.

The same tiny SD1.5-type UNet runs through ComfyUI's sampler functions (which read the
unconditional prediction through a post-CFG hook) and through zsampling's core ``sample()``
with the ``cfg-pp`` guider and the Euler or DPM-Solver++(2M) solver. Runs in the ComfyUI venv
(.ci/run-comfyui); skips elsewhere, saying why.
"""

from __future__ import annotations

from typing import Any

import pytest
from comfy_tiny import (
    cfg_guider,
    conditioning,
    core_zigzag,
    import_comfyui,
    model_sigmas,
    run,
    tiny_patcher,
)

import_comfyui()

import comfy.samplers  # noqa: E402

from zsampling import Standard  # noqa: E402
from zsampling.core.cfg import CFG  # noqa: E402
from zsampling.core.solvers import DPMSolverPP2M, Euler  # noqa: E402
from zsampling.guiders import CFGPlusPlus  # noqa: E402
from zsampling.testing.compare import relative_max as rel  # noqa: E402

POS, NEG = conditioning(1), conditioning(2)
SOLVERS = {"euler_cfg_pp": Euler, "dpmpp_2m_cfg_pp": DPMSolverPP2M}


@pytest.fixture(scope="module")
def patcher() -> Any:
    return tiny_patcher()


@pytest.mark.parametrize("scale", [0.6, 1.0])
@pytest.mark.parametrize("comfy_name", sorted(SOLVERS))
def test_cfg_pp_equals_comfyuis_cfg_pp_sampler(patcher: Any, comfy_name: str, scale: float) -> None:
    sigmas = model_sigmas(patcher, 8)
    ref = run(
        cfg_guider(patcher, scale, POS, NEG), comfy.samplers.sampler_object(comfy_name), sigmas
    )
    solver = SOLVERS[comfy_name]()
    ours = core_zigzag(
        patcher, sigmas, Standard(guidance=scale), POS, NEG, solver=solver, guider=CFGPlusPlus()
    )
    assert rel(ours, ref) <= 1e-5
    # plain CFG at the same scale is measurably different (the parity above is not vacuous)
    plain = core_zigzag(
        patcher, sigmas, Standard(guidance=scale), POS, NEG, solver=solver, guider=CFG()
    )
    assert rel(plain, ref) > 1e-4
