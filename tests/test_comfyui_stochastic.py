"""The stochastic and ancestral solvers equal ComfyUI's samplers given the same noise, for SD-type
(EPS) and flow (CONST) model sampling."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from comfy_tiny import import_comfyui
from stochastic_reference import (
    SEEDS,
    GuidedDenoiser,
    SeededNoise,
    flow_denoiser,
    karras,
    ours,
    relative,
    start_noise,
)
from torch import Tensor

from zsampling.solvers.ancestral import EulerAncestral
from zsampling.solvers.ddpm import DDPM
from zsampling.solvers.dpm2_ancestral import DPM2Ancestral
from zsampling.solvers.dpmpp_2m_sde import DPMPP2MSDE
from zsampling.solvers.dpmpp_2s_ancestral import DPMPP2SAncestral
from zsampling.solvers.dpmpp_3m_sde import DPMPP3MSDE
from zsampling.solvers.dpmpp_sde import DPMPPSDE
from zsampling.solvers.er_sde import ERSDE
from zsampling.solvers.lcm import LCM

import_comfyui()

import comfy.k_diffusion.sampling as sampling  # noqa: E402
import comfy.model_sampling as model_sampling  # noqa: E402


class EpsSampling(model_sampling.ModelSamplingDiscrete, model_sampling.EPS):
    """ComfyUI's SD1.5-type model sampling."""


class FlowSampling(model_sampling.ModelSamplingDiscreteFlow, model_sampling.CONST):
    """ComfyUI's SD3-type model sampling (shift 1)."""


class Patcher:
    def __init__(self, sampling: Any) -> None:
        self.sampling = sampling

    def get_model_object(self, name: str) -> Any:
        assert name == "model_sampling"
        return self.sampling


class Wrapped:
    """A denoiser shaped like ComfyUI's ``KSamplerX0Inpaint(CFGGuider)`` chain, as far as the
    sampler functions look into it."""

    def __init__(self, denoiser: Any, sampling: Any) -> None:
        self.denoiser = denoiser
        self.inner_model = self
        self.model_sampling = sampling
        self.model_patcher = Patcher(sampling)

    def __call__(self, x: Tensor, sigma: Tensor, **extra: Any) -> Tensor:
        out: Tensor = self.denoiser(x, sigma)
        return out


CASES: list[tuple[Any, str, dict[str, Any]]] = [
    (EulerAncestral(eta=0.8, s_noise=0.9), "sample_euler_ancestral", {"eta": 0.8, "s_noise": 0.9}),
    (DPM2Ancestral(), "sample_dpm_2_ancestral", {}),
    (DPMPP2SAncestral(), "sample_dpmpp_2s_ancestral", {}),
    (DPMPPSDE(), "sample_dpmpp_sde", {}),
    (DPMPP2MSDE(), "sample_dpmpp_2m_sde", {}),
    (DPMPP2MSDE(solver_type="heun"), "sample_dpmpp_2m_sde_heun", {}),
    (DPMPP3MSDE(), "sample_dpmpp_3m_sde", {}),
    (DDPM(), "sample_ddpm", {}),
    (LCM(), "sample_lcm", {}),
    (ERSDE(), "sample_er_sde", {}),
    (ERSDE(max_stage=2, s_noise=0.5), "sample_er_sde", {"max_stage": 2, "s_noise": 0.5}),
]
NOT_FOR_FLOW = {"sample_ddpm"}
"""ComfyUI's DDPM applies VP formulas whatever the model sampling: no flow reference."""


def flow_sigmas(steps: int) -> tuple[Tensor, Tensor]:
    """A flow schedule in ``t`` (ComfyUI's sigmas) below pure noise, and as our levels."""
    t = torch.linspace(0.97, 0.0, steps + 1, dtype=torch.float64)
    return t, t / (1 - t)


def pair(
    solver: Any, function: str, options: dict[str, Any], steps: int, flow: bool
) -> tuple[Tensor, Tensor]:
    """Our latents and ComfyUI's, from the same start and the same noise draws."""
    start = start_noise()
    if flow:
        times, sigmas = flow_sigmas(steps)
        model, x = Wrapped(flow_denoiser, FlowSampling()), start
    else:
        times = sigmas = karras(steps)
        model, x = Wrapped(GuidedDenoiser(), EpsSampling()), start * sigmas[0]
    reference = getattr(sampling, function)(
        model, x, times, disable=True, noise_sampler=SeededNoise(SEEDS, (2,)), **options
    )
    return ours(solver, sigmas, start, flow), reference


RUNS = [
    pytest.param(*case, flow, id=f"{case[0]!r}-{'flow' if flow else 'eps'}")
    for case in CASES
    for flow in (False, True)
    if not (flow and case[1] in NOT_FOR_FLOW)
]


@pytest.mark.parametrize("steps", [10, 25])
@pytest.mark.parametrize(("solver", "function", "options", "flow"), RUNS)
def test_equals_comfyui_with_the_same_noise(
    solver: Any, function: str, options: dict[str, Any], steps: int, flow: bool
) -> None:
    got, reference = pair(solver, function, options, steps, flow)
    assert relative(got, reference) <= 1e-5
    sigmas = flow_sigmas(steps)[1] if flow else karras(steps)
    reseeded = ours(solver, sigmas, start_noise(), flow, seeds=[s + 1 for s in SEEDS])
    assert relative(got, reseeded) > 1e-3  # the noise reaches the result


def brownian_difference(flow: bool, cpu: bool = False) -> float:
    """Our ``dpmpp-2m-sde`` with ``noise="brownian"`` against ComfyUI's given the same tree
    (``cpu``: ComfyUI's CPU tree, which it queries at float32 times)."""
    start = start_noise()
    if flow:
        times, sigmas = flow_sigmas(10)
        model, x = Wrapped(flow_denoiser, FlowSampling()), start
    else:
        times = sigmas = karras(10)
        model, x = Wrapped(GuidedDenoiser(), EpsSampling()), start * sigmas[0]
    seeds = [
        int(torch.randint(0, 2**63 - 1, (1,), generator=torch.Generator().manual_seed(s)))
        for s in SEEDS
    ]
    top = times[0].clone()
    tree = sampling.BrownianTreeNoiseSampler(x, torch.zeros_like(top), top, seed=seeds, cpu=cpu)
    reference = sampling.sample_dpmpp_2m_sde(model, x, times, disable=True, noise_sampler=tree)
    return relative(ours(DPMPP2MSDE(noise="brownian"), sigmas, start, flow), reference)


@pytest.mark.parametrize("flow", [False, True], ids=["eps", "flow"])
def test_brownian_noise_is_comfyuis_tree(flow: bool) -> None:
    assert brownian_difference(flow) <= 1e-5
