"""CFG++, implicit Z-Sampling and Z² inside real ComfyUI sampling (the vendored source, a tiny
SD1.5-type UNet).

- CFG++ (guider ``cfg-pp``) against ComfyUI's own ``euler_cfg_pp`` and ``dpmpp_2m_cfg_pp``
  (which read the unconditional prediction through a post-CFG hook), through zsampling's core
  ``sample()`` with the Euler or DPM-Solver++(2M) solver on the same UNet.
- ``implicit-zigzag`` and ``z2`` as ComfyUI samplers: equal to the core run on the same network,
  at the cost docs/comfyui.md states (ComfyUI's guider takes one scale per call, so the guidance
  gap costs one call per scale there).

Runs in the ComfyUI venv (.ci/run-comfyui); skips elsewhere, saying why.
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
from zsampling.core.guidance import EvaluationCounter  # noqa: E402
from zsampling.core.solvers import DPMSolverPP2M, Euler  # noqa: E402
from zsampling.guiders import CFGPlusPlus  # noqa: E402
from zsampling.integrations.comfyui.sampling import SamplerSpec, comfy_sampler  # noqa: E402
from zsampling.samplers import Z2, ImplicitZigzag  # noqa: E402
from zsampling.testing.compare import relative_max as rel  # noqa: E402

POS, NEG = conditioning(1), conditioning(2)
G = 5.0
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


@pytest.mark.parametrize("cls", [ImplicitZigzag, Z2])
def test_in_comfyui_equals_the_core_at_one_call_per_scale(patcher: Any, cls: type) -> None:
    steps, batch = 6, 1
    sigmas = model_sigmas(patcher, steps)
    settings = {"guidance": G, "inversion_guidance": 0.0}
    counter = EvaluationCounter()
    spec = SamplerSpec(cls, settings, Euler(), counter=counter)
    ours = run(cfg_guider(patcher, G, POS, NEG), comfy_sampler(spec), sigmas, batch=batch)
    core = core_zigzag(patcher, sigmas, cls(**settings), POS, NEG)
    assert rel(ours, core) <= 1e-5
    lam = steps - 1
    # each gap: a call at G (2B rows) and one at 0 (B rows); the last step: one call at G
    gaps = lam * (2 if cls is ImplicitZigzag else 1)
    assert counter.guided_calls == counter.model_calls == 2 * gaps + (steps - lam)
    assert counter.rows == batch * (3 * gaps + 2 * (steps - lam))
