"""Zigzag, restart and W2SD around a ComfyUI sampler (the route nodes' optional SAMPLER input),
inside the vendored ComfyUI, on the tiny SD1.5-type UNet.

Runs in the ComfyUI venv (.ci/run-comfyui); skips elsewhere, saying why.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from comfy_tiny import cfg_guider, import_comfyui, load_pack, model_sigmas, run, tiny_patcher

import_comfyui()

import comfy.k_diffusion.sampling as k_sampling  # noqa: E402
import comfy.samplers  # noqa: E402

from zsampling.core.errors import InvalidArgument  # noqa: E402
from zsampling.testing.compare import relative_max as rel  # noqa: E402

nodes = load_pack()
# torchsde's notes on float32 ends of ComfyUI's Brownian tree (ComfyUI's own runs print them too)
pytestmark = pytest.mark.filterwarnings("ignore:Should have t:UserWarning")
STEPS = 5
CFG = 4.0


@pytest.fixture(scope="module")
def patcher() -> Any:
    return tiny_patcher()


@pytest.fixture(scope="module")
def sigmas(patcher: Any) -> torch.Tensor:
    return model_sigmas(patcher, STEPS)


def route(node: str, sampler: Any = None, **settings: Any) -> Any:
    """The SAMPLER of one of the pack's route nodes, as the graph builds it."""
    cls = nodes.NODE_CLASS_MAPPINGS[node]
    return cls().get_sampler(solver="euler", sampler=sampler, **settings)[0]


def sample(patcher: Any, sigmas: torch.Tensor, sampler: Any, seed: int = 0) -> torch.Tensor:
    return run(cfg_guider(patcher, CFG), sampler, sigmas, seed=seed)


ZIGZAG = {"zigzag_steps": 3, "inversion_guidance": 0.5}
RESTART = {"restart_min": 0.5, "restart_max": 5.0, "rounds": 1}


@pytest.mark.parametrize(
    ("node", "settings"), [("ZSamplingZigzag", ZIGZAG), ("ZSamplingRestart", RESTART)]
)
def test_around_comfyuis_euler_equals_the_built_in_route(
    patcher: Any, sigmas: torch.Tensor, node: str, settings: dict[str, Any]
) -> None:
    euler = comfy.samplers.sampler_object("euler")
    around = sample(patcher, sigmas, route(node, euler, **settings), seed=3)
    built_in = sample(patcher, sigmas, route(node, **settings), seed=3)
    plain = sample(patcher, sigmas, euler, seed=3)
    assert bool(torch.isfinite(around).all())
    assert rel(around, built_in) <= 1e-5
    assert rel(around, plain) > 1e-3  # the route did something


def test_around_euler_on_a_flow_model_equals_the_built_in_route(patcher: Any) -> None:
    """Flow models (ComfyUI's CONST sampling): the wrapped sampler steps over ComfyUI's own
    sigmas, not zsampling's levels."""
    from comfy_extras.nodes_model_advanced import ModelSamplingSD3

    (flow,) = ModelSamplingSD3().patch(patcher, 3.0)
    sigmas = model_sigmas(flow, STEPS, "simple")
    euler = comfy.samplers.sampler_object("euler")
    around = sample(flow, sigmas, route("ZSamplingZigzag", euler, **ZIGZAG), seed=3)
    assert rel(around, sample(flow, sigmas, route("ZSamplingZigzag", **ZIGZAG), seed=3)) <= 1e-5


def test_w2sd_around_euler_equals_the_built_in_route(patcher: Any, sigmas: torch.Tensor) -> None:
    weak = tiny_patcher(seed=1)
    euler = comfy.samplers.sampler_object("euler")
    cls = nodes.NODE_CLASS_MAPPINGS["ZSamplingW2SD"]
    make = cls().get_sampler
    around = sample(patcher, sigmas, make(solver="euler", weak_model=weak, sampler=euler)[0])
    built_in = sample(patcher, sigmas, make(solver="euler", weak_model=weak)[0])
    assert rel(around, built_in) <= 1e-5


def test_res_multistep_one_step_per_call_is_its_euler_start(
    patcher: Any, sigmas: torch.Tensor
) -> None:
    """Each call starts res_multistep without history, and its first step is Euler's: the route
    around it equals the route around euler, and differs from res_multistep run whole."""
    res = comfy.samplers.sampler_object("res_multistep")
    euler = comfy.samplers.sampler_object("euler")
    for node, settings in (("ZSamplingZigzag", ZIGZAG), ("ZSamplingRestart", RESTART)):
        around = sample(patcher, sigmas, route(node, res, **settings), seed=5)
        assert rel(around, sample(patcher, sigmas, route(node, euler, **settings), seed=5)) <= 1e-5
    no_zigzag = sample(patcher, sigmas, route("ZSamplingZigzag", res, zigzag_steps=0))
    assert rel(no_zigzag, sample(patcher, sigmas, res)) > 1e-4  # whole runs keep history


def call_seeds(seed: int) -> list[int]:
    """The documented seed of each call: draws of randint(2**62) from a generator seeded with
    the NOISE seed."""
    g = torch.Generator().manual_seed(seed)
    return [int(torch.randint(0, 2**62, (1,), generator=g)) for _ in range(STEPS)]


def stepwise(name: str, seed: int) -> Any:
    """ComfyUI's sampler ``name`` run one step per call over each pair of sigmas, call ``k``
    seeded with ``call_seeds(seed)[k]``: what the route around it is with no zigzag."""
    function = getattr(k_sampling, f"sample_{name}")
    seeds = call_seeds(seed)

    def sampler(model: Any, x: torch.Tensor, sigmas: torch.Tensor, extra_args: Any = None,
                callback: Any = None, disable: Any = None) -> torch.Tensor:  # fmt: skip
        for k in range(len(sigmas) - 1):
            x = function(model, x, sigmas[k : k + 2], extra_args={**extra_args, "seed": seeds[k]})
        return x

    return comfy.samplers.KSAMPLER(sampler)


def test_zigzag_around_dpmpp_2m_sde(patcher: Any, sigmas: torch.Tensor) -> None:
    sde = comfy.samplers.sampler_object("dpmpp_2m_sde")
    zigzag = route("ZSamplingZigzag", sde, **ZIGZAG)
    first, again = (sample(patcher, sigmas, zigzag, seed=7) for _ in range(2))
    assert bool(torch.isfinite(first).all())
    assert torch.equal(first, again)  # seeded per call: reproducible
    assert rel(sample(patcher, sigmas, zigzag, seed=8), first) > 1e-3
    # with no zigzag step, the route is the SDE sampler stepped call by call
    flat = sample(patcher, sigmas, route("ZSamplingZigzag", sde, zigzag_steps=0), seed=7)
    assert rel(flat, sample(patcher, sigmas, stepwise("dpmpp_2m_sde", 7), seed=7)) <= 1e-5
    assert rel(first, flat) > 1e-3  # the zigzag moved it
    # each call's noise is its own: the same seed on every call is another image
    same = comfy.samplers.KSAMPLER(_same_seed_sde)
    assert rel(flat, sample(patcher, sigmas, same, seed=7)) > 1e-3


def _same_seed_sde(model: Any, x: torch.Tensor, sigmas: torch.Tensor, extra_args: Any = None,
                   callback: Any = None, disable: Any = None) -> torch.Tensor:  # fmt: skip
    for k in range(len(sigmas) - 1):
        x = k_sampling.sample_dpmpp_2m_sde(model, x, sigmas[k : k + 2], extra_args=extra_args)
    return x


def test_restart_around_res_multistep_is_reproducible(patcher: Any, sigmas: torch.Tensor) -> None:
    restart = route("ZSamplingRestart", comfy.samplers.sampler_object("res_multistep"), **RESTART)
    first, again = (sample(patcher, sigmas, restart, seed=2) for _ in range(2))
    assert bool(torch.isfinite(first).all()) and torch.equal(first, again)
    assert rel(sample(patcher, sigmas, restart, seed=9), first) > 1e-3


def test_the_sampler_reports_each_route_step_to_the_callback(
    patcher: Any, sigmas: torch.Tensor
) -> None:
    seen: list[int] = []
    zigzag = route("ZSamplingZigzag", comfy.samplers.sampler_object("euler"), zigzag_steps=2)
    guider = cfg_guider(patcher, CFG)
    noise = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    guider.sample(noise, torch.zeros(1, 4, 8, 8), zigzag, sigmas, disable_pbar=True,
                  callback=lambda i, *_: seen.append(i), seed=0)  # fmt: skip
    assert seen == [0, 0, 1, 1, 2, 3, 4]


def test_something_other_than_a_comfyui_sampler_is_refused_by_name() -> None:
    with pytest.raises(InvalidArgument) as err:
        route("ZSamplingZigzag", "euler")
    assert err.value.field == "sampler" and "KSAMPLER" in str(err.value)
