"""zsampling's route samplers picked by name in ComfyUI's ``KSampler`` / ``KSamplerAdvanced``.

On the tiny SD1.5-type UNet in the vendored ComfyUI, with the pack loaded by ComfyUI's loader:
``zsampling_zigzag`` in a KSampler is the zigzag node with its defaults (the guider's cfg as
its guidance) in ``SamplerCustomAdvanced``, and zsampling's own ``sample()`` on the same UNet;
the other routes equal the generic node with ``{}`` settings; and every sampler of ComfyUI's
own list still runs after the pack added its names.

Runs in the ComfyUI venv (.ci/run-comfyui); skips elsewhere, saying why.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from comfy_tiny import (
    cfg_guider,
    conditioning,
    core_zigzag,
    import_comfyui,
    load_pack,
    model_sigmas,
    tiny_patcher,
)

import_comfyui()

import comfy.samplers  # noqa: E402
import nodes  # noqa: E402
from comfy_extras.nodes_custom_sampler import (  # noqa: E402
    Noise_RandomNoise,
    SamplerCustomAdvanced,
)

from zsampling import Zigzag  # noqa: E402
from zsampling.integrations.comfyui.ksampler import (  # noqa: E402
    ROUTES,
    ksampler_name,
    register_ksampler_samplers,
)
from zsampling.testing.compare import relative_max as rel  # noqa: E402

# ComfyUI's own menu (another test module may have loaded the pack already)
BUILTIN = [n for n in comfy.samplers.KSampler.SAMPLERS if not n.startswith("zsampling_")]
NODES = load_pack().NODE_CLASS_MAPPINGS
G, STEPS, SEED = 5.0, 6, 3
POS, NEG = conditioning(1), conditioning(2)


@pytest.fixture(scope="module")
def patcher() -> Any:
    return tiny_patcher()


def latent() -> dict[str, torch.Tensor]:
    return {"samples": torch.zeros(1, 4, 8, 8)}


def ksampler(patcher: Any, sampler_name: str, steps: int = STEPS) -> torch.Tensor:
    """ComfyUI's KSampler node, as a graph runs it (karras schedule, full denoise)."""
    (out,) = nodes.KSampler().sample(
        patcher, SEED, steps, G, sampler_name, "karras", POS, NEG, latent()
    )
    samples: torch.Tensor = out["samples"]
    return samples


def ksampler_advanced(patcher: Any, sampler_name: str) -> torch.Tensor:
    (out,) = nodes.KSamplerAdvanced().sample(
        patcher, "enable", SEED, STEPS, G, sampler_name, "karras", POS, NEG, latent(),
        0, 10000, "disable",
    )  # fmt: skip
    samples: torch.Tensor = out["samples"]
    return samples


def custom_advanced(patcher: Any, sampler: Any) -> torch.Tensor:
    """The same run through SamplerCustomAdvanced: a CFGGuider at the KSampler's cfg, the same
    seed and Karras sigmas."""
    out, _ = SamplerCustomAdvanced().sample(
        Noise_RandomNoise(SEED), cfg_guider(patcher, G, POS, NEG), sampler,
        model_sigmas(patcher, STEPS), latent(),
    )  # fmt: skip
    samples: torch.Tensor = out["samples"]
    return samples


def node_defaults(node: str) -> dict[str, Any]:
    """Every widget of a node at its default, as a freshly placed node has them."""
    required = NODES[node].INPUT_TYPES()["required"]
    return {k: spec[1]["default"] for k, spec in required.items() if "default" in spec[1]}


def test_ksampler_zigzag_is_the_zigzag_node_and_the_core_zigzag(patcher: Any) -> None:
    ours = ksampler(patcher, "zsampling_zigzag")
    (node_sampler,) = NODES["ZSamplingZigzag"]().get_sampler(**node_defaults("ZSamplingZigzag"))
    assert torch.equal(ours, custom_advanced(patcher, node_sampler))
    core = core_zigzag(patcher, model_sigmas(patcher, STEPS), Zigzag(guidance=G), POS, NEG, SEED)
    assert rel(ours, core) <= 1e-5
    # the KSampler's cfg is the zig's scale: another cfg, another result
    assert rel(core_zigzag(patcher, model_sigmas(patcher, STEPS), Zigzag(guidance=2.0), POS, NEG,
                           SEED), ours) > 1e-3  # fmt: skip
    assert rel(ksampler(patcher, "euler"), ours) > 1e-3


@pytest.mark.parametrize("route", ROUTES)
def test_ksampler_advanced_runs_each_route_as_the_generic_node(patcher: Any, route: str) -> None:
    ours = ksampler_advanced(patcher, ksampler_name(route))
    (node_sampler,) = NODES["ZSamplingSampler"]().get_sampler(route, "{}", "euler")
    assert torch.equal(ours, custom_advanced(patcher, node_sampler))


def test_registering_again_changes_nothing() -> None:
    menu = list(comfy.samplers.KSampler.SAMPLERS)
    ours = [ksampler_name(r) for r in ROUTES]
    assert register_ksampler_samplers() == ours
    assert register_ksampler_samplers() == ours
    assert comfy.samplers.KSampler.SAMPLERS == menu == BUILTIN + ours
    assert comfy.samplers.SAMPLER_NAMES is comfy.samplers.KSampler.SAMPLERS
    ks = comfy.samplers.KSAMPLER_NAMES
    assert [n for n in ks if n.startswith("zsampling_")] == ours


def test_a_pack_that_rebuilt_the_list_does_not_hide_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    """Some packs rebind ``SAMPLER_NAMES`` to a new list, which leaves ``KSampler`` holding the
    old one: the routes go into every list ComfyUI's nodes read."""

    def without_ours(names: list[str]) -> list[str]:
        return [n for n in names if not n.startswith("zsampling_")]

    ksampler_names = without_ours(comfy.samplers.KSAMPLER_NAMES)
    menu = without_ours(comfy.samplers.KSampler.SAMPLERS)
    rebuilt = [*menu, "another_packs_sampler"]
    monkeypatch.setattr(comfy.samplers, "KSAMPLER_NAMES", ksampler_names)
    monkeypatch.setattr(comfy.samplers.KSampler, "SAMPLERS", menu)
    monkeypatch.setattr(comfy.samplers, "SAMPLER_NAMES", rebuilt)
    ours = register_ksampler_samplers()
    assert menu == [*BUILTIN, *ours]
    assert rebuilt == [*BUILTIN, "another_packs_sampler", *ours]
    assert ksampler_names[-len(ours) :] == ours


@pytest.mark.parametrize("name", BUILTIN)
def test_every_builtin_sampler_still_runs_after_the_pack_loads(patcher: Any, name: str) -> None:
    assert name in nodes.KSampler.INPUT_TYPES()["required"]["sampler_name"][0]
    out = ksampler(patcher, name, steps=3)
    assert out.shape == (1, 4, 8, 8)
    assert bool(torch.isfinite(out).all())
    assert float(out.abs().max()) > 0.0
