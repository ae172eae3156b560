"""zsampling's guiders as ComfyUI GUIDER nodes: SamplerCustomAdvanced with the pack's guider node
equals the same guider run by zsampling's own sampling, on the tiny SD1.5-type UNet.

Runs in the ComfyUI venv (.ci/run-comfyui); skips elsewhere, saying why.
"""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import pytest
import torch
from comfy_tiny import (
    conditioning,
    core_zigzag,
    import_comfyui,
    load_custom_sampling,
    model_sigmas,
    run,
    tiny_patcher,
)

import_comfyui()

import comfy.samplers  # noqa: E402

from zsampling.core.errors import InvalidArgument, RunFailure  # noqa: E402
from zsampling.integrations.comfyui.guiders import comfy_guiders  # noqa: E402
from zsampling.plugins.manager import default_registry  # noqa: E402
from zsampling.samplers import Standard, Zigzag  # noqa: E402
from zsampling.testing.compare import relative_max as rel  # noqa: E402

nodes = load_custom_sampling()
CFG = 4.0
POSITIVE, NEGATIVE = conditioning(1), conditioning(2)
# settings that make each rule differ from plain CFG on the tiny model
SETTINGS: dict[str, dict[str, Any]] = {
    "apg": {"eta": 0.0, "norm_threshold": 1.0, "momentum": -0.5},
    "apg-mix": {"apg_start_step": 0, "norm_threshold": 1.0},
    "rescaled-cfg": {"guidance_rescale": 0.7},
}


@pytest.fixture(scope="module")
def patcher() -> Any:
    return tiny_patcher()


@pytest.fixture(scope="module")
def sigmas(patcher: Any) -> torch.Tensor:
    return model_sigmas(patcher, 4)


def guider_node(patcher: Any, name: str, settings: dict[str, Any] | None = None) -> Any:
    node = nodes.NODE_CLASS_MAPPINGS["ZSamplingGuider"]()
    text = json.dumps(settings if settings is not None else SETTINGS.get(name, {}))
    return node.get_guider(patcher, POSITIVE, NEGATIVE, CFG, name, text)[0]


def rule(name: str) -> Any:
    return default_registry().get("guider", name, "guider").cls(**SETTINGS.get(name, {}))


def test_the_node_offers_every_guider_that_can_run_in_comfyui() -> None:
    spec = nodes.NODE_CLASS_MAPPINGS["ZSamplingGuider"].INPUT_TYPES()["required"]
    offered = spec["guider"][0]
    assert offered == comfy_guiders()
    assert {"cfg", "apg", "cfg-zero-star", "rescaled-cfg", "tangential-cfg"} <= set(offered)
    assert not {"pag", "cfg-pp", "auto-guidance"} & set(offered)


@pytest.mark.parametrize("name", comfy_guiders())
def test_a_guider_node_equals_zsamplings_own_run(
    patcher: Any, sigmas: torch.Tensor, name: str
) -> None:
    euler = comfy.samplers.sampler_object("euler")
    if name == "fdg" and importlib.util.find_spec("kornia") is None:
        with pytest.raises(RunFailure, match="pip install kornia"):  # said, not a traceback
            run(guider_node(patcher, name), euler, sigmas, seed=4)
        return
    ours = run(guider_node(patcher, name), euler, sigmas, seed=4)
    core = core_zigzag(patcher, sigmas, Standard(guidance=CFG), POSITIVE, NEGATIVE, seed=4,
                       guider=rule(name))  # fmt: skip
    assert bool(torch.isfinite(ours).all())
    assert rel(ours, core) <= 1e-5
    if name != "cfg":  # the rule is not plain CFG under another name
        plain = run(guider_node(patcher, "cfg"), euler, sigmas, seed=4)
        assert rel(ours, plain) > 1e-4


@pytest.mark.parametrize("name", ["cfg-zero-star", "apg"])
def test_a_guider_node_on_a_flow_model_equals_zsamplings_own_run(patcher: Any, name: str) -> None:
    """Flow models (ComfyUI's CONST sampling): the rule combines velocities, as zsampling's run
    on a flow model does."""
    from comfy_extras.nodes_model_advanced import ModelSamplingSD3

    (flow,) = ModelSamplingSD3().patch(patcher, 3.0)
    sigmas = model_sigmas(flow, 4, "simple")
    ours = run(guider_node(flow, name), comfy.samplers.sampler_object("euler"), sigmas, seed=4)
    core = core_zigzag(flow, sigmas, Standard(guidance=CFG), POSITIVE, NEGATIVE, seed=4,
                       guider=rule(name))  # fmt: skip
    assert rel(ours, core) <= 1e-5


def test_zigzag_node_sets_the_guider_nodes_scale_per_call(
    patcher: Any, sigmas: torch.Tensor
) -> None:
    """The zig at the guider's cfg, the zag at inversion_guidance, both through APG (its
    momentum carried across the run's calls as in zsampling's own run)."""
    zigzag = nodes.NODE_CLASS_MAPPINGS["ZSamplingZigzag"]().get_sampler(
        solver="euler", inversion_guidance=0.5
    )[0]
    ours = run(guider_node(patcher, "apg"), zigzag, sigmas, seed=6)
    settings = Zigzag(guidance=CFG, inversion_guidance=0.5)
    core = core_zigzag(patcher, sigmas, settings, POSITIVE, NEGATIVE, seed=6, guider=rule("apg"))
    assert rel(ours, core) <= 1e-5


def test_samplercustomadvanced_runs_the_guider_node(patcher: Any, sigmas: torch.Tensor) -> None:
    node = nodes.NODE_CLASS_MAPPINGS["SamplerCustomAdvanced"]()
    noise = nodes.NODE_CLASS_MAPPINGS["RandomNoise"]().get_noise(4)[0]
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    sampler = comfy.samplers.sampler_object("euler")
    guider = guider_node(patcher, "cfg-zero-star")
    out = node.sample(noise, guider, sampler, sigmas, latent)[0]["samples"]
    core = core_zigzag(patcher, sigmas, Standard(guidance=CFG), POSITIVE, NEGATIVE, seed=4,
                       guider=rule("cfg-zero-star"))  # fmt: skip
    assert rel(out, core) <= 1e-5


@pytest.mark.parametrize(
    ("name", "settings", "field"),
    [("pag", {}, "guider"), ("cfg-pp", {}, "guider"), ("apg", {"momentum": "x"}, "apg.momentum")],
)
def test_what_cannot_run_is_refused_by_name(
    patcher: Any, name: str, settings: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        guider_node(patcher, name, settings)
    assert err.value.field == field
