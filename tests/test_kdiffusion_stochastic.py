"""The stochastic and ancestral solvers equal k-diffusion's samplers given the same noise."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from stochastic_reference import SEEDS, GuidedDenoiser, SeededNoise, karras, ours, relative
from stochastic_reference import start_noise as noise
from torch import Tensor

from zsampling.core.errors import InvalidArgument
from zsampling.integrations.kdiffusion import sample_standard
from zsampling.solvers.ancestral import EulerAncestral
from zsampling.solvers.dpm2_ancestral import DPM2Ancestral
from zsampling.solvers.dpmpp_2m_sde import DPMPP2MSDE
from zsampling.solvers.dpmpp_2s_ancestral import DPMPP2SAncestral
from zsampling.solvers.dpmpp_3m_sde import DPMPP3MSDE
from zsampling.solvers.dpmpp_sde import DPMPPSDE

sampling = pytest.importorskip("k_diffusion.sampling", exc_type=ImportError)

HEUN = {"solver_type": "heun", "eta": 0.6}
CASES: list[tuple[Any, str, dict[str, Any]]] = [
    (EulerAncestral(), "sample_euler_ancestral", {}),
    (EulerAncestral(eta=0.5, s_noise=0.8), "sample_euler_ancestral", {"eta": 0.5, "s_noise": 0.8}),
    (DPM2Ancestral(), "sample_dpm_2_ancestral", {}),
    (DPMPP2SAncestral(eta=0.7), "sample_dpmpp_2s_ancestral", {"eta": 0.7}),
    (DPMPPSDE(), "sample_dpmpp_sde", {}),
    (DPMPPSDE(eta=0.5, r=0.4), "sample_dpmpp_sde", {"eta": 0.5, "r": 0.4}),
    (DPMPP2MSDE(), "sample_dpmpp_2m_sde", {}),
    (DPMPP2MSDE(solver_type="heun", eta=0.6), "sample_dpmpp_2m_sde", HEUN),
    (DPMPP3MSDE(), "sample_dpmpp_3m_sde", {}),
    (DPMPP3MSDE(eta=0.0), "sample_dpmpp_3m_sde", {"eta": 0.0}),
]


def pair(solver: Any, function: str, options: dict[str, Any], steps: int) -> tuple[Tensor, Tensor]:
    """Our latents and k-diffusion's, from the same start and the same noise draws."""
    sigmas = karras(steps)
    start = noise()
    reference = getattr(sampling, function)(
        GuidedDenoiser(),
        start * sigmas[0],
        sigmas,
        disable=True,
        noise_sampler=SeededNoise(SEEDS, (2,)),
        **options,
    )
    return ours(solver, sigmas, start), reference


@pytest.mark.parametrize("steps", [10, 25])
@pytest.mark.parametrize(("solver", "function", "options"), CASES, ids=lambda c: str(c))
def test_equals_k_diffusion_with_the_same_noise(
    solver: Any, function: str, options: dict[str, Any], steps: int
) -> None:
    got, reference = pair(solver, function, options, steps)
    assert relative(got, reference) <= 1e-5
    if solver.adds_noise:  # the noise matters: the parity is not the ODE's
        ode = ours(solver.model_copy(update={"eta": 0.0}), karras(steps), noise())
        assert relative(ode, reference) > 1e-3


def test_the_integration_takes_any_registered_solver_by_k_diffusions_name() -> None:
    sigmas = karras(10)
    start = noise() * sigmas[0]
    args = {"cond_scale": 3.0}
    pairs = [("euler_ancestral", "sample_euler_ancestral"), ("dpmpp_2m_sde", "sample_dpmpp_2m_sde")]
    for name, function in pairs:
        reference = getattr(sampling, function)(
            GuidedDenoiser(), start, sigmas, disable=True, noise_sampler=SeededNoise(SEEDS, (2,))
        )
        got = sample_standard(
            GuidedDenoiser(),
            start,
            sigmas,
            args,
            disable=True,
            cfg="model",
            solver=name,
            noise_sampler=SeededNoise(SEEDS, (2,)),
        )
        assert relative(got, reference) <= 1e-5
    with pytest.raises(InvalidArgument, match="dpmpp-2m-sde"):
        sample_standard(GuidedDenoiser(), start, sigmas, args, cfg="model", solver="dpmpp_9m")


def entropies() -> list[int]:
    """The seeds a run's Brownian trees get: one draw from each item's generator."""
    return [
        int(torch.randint(0, 2**63 - 1, (1,), generator=torch.Generator().manual_seed(s)))
        for s in SEEDS
    ]


BROWNIAN: list[tuple[Any, str]] = [
    (DPMPPSDE(noise="brownian"), "sample_dpmpp_sde"),
    (DPMPP2MSDE(noise="brownian"), "sample_dpmpp_2m_sde"),
    (DPMPP3MSDE(noise="brownian", eta=0.8), "sample_dpmpp_3m_sde"),
]


def brownian_pair(solver: Any, function: str, steps: int) -> tuple[Tensor, Tensor]:
    """Our latents and k-diffusion's with its Brownian tree on ``[0, sigma_0]`` seeded as ours."""
    sigmas = karras(steps)
    start = noise() * sigmas[0]
    top = sigmas[0].clone()  # float64 end points: python floats would make float32 ones
    tree = sampling.BrownianTreeNoiseSampler(start, torch.zeros_like(top), top, seed=entropies())
    reference = getattr(sampling, function)(
        GuidedDenoiser(), start, sigmas, disable=True, noise_sampler=tree, eta=solver.eta
    )
    return ours(solver, sigmas, noise()), reference


@pytest.mark.parametrize("steps", [10, 25])
@pytest.mark.parametrize(("solver", "function"), BROWNIAN, ids=lambda c: str(c))
def test_brownian_noise_is_k_diffusions_tree(solver: Any, function: str, steps: int) -> None:
    got, reference = brownian_pair(solver, function, steps)
    assert relative(got, reference) <= 1e-5
    gaussian = ours(solver.model_copy(update={"noise": "gaussian"}), karras(steps), noise())
    assert relative(gaussian, reference) > 1e-3
