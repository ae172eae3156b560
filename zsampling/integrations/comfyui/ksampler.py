"""zsampling's route samplers in ComfyUI's own sampler list, where most ComfyUI users pick one.

ComfyUI's ``KSampler`` and ``KSamplerAdvanced`` nodes offer ``comfy.samplers.KSampler.SAMPLERS``
(the same list object as ``SAMPLER_NAMES``) and ``KSamplerSelect`` offers ``SAMPLER_NAMES``;
each node reads the list whenever its inputs are asked for, and a chosen name becomes a sampler
through ``comfy.samplers.ksampler``, which looks up ``sample_<name>`` in
``comfy.k_diffusion.sampling``. Packs that add samplers to those menus therefore put a function
there and append the name to the lists in place (a new list object would leave ``KSampler``
holding the old one). `register_ksampler_samplers` does that for the routes below, with their
default settings, zsampling's Euler step and the KSampler's ``cfg`` as the main guidance scale
(the first of the sampler's ``scales``); every call goes through `sample_in_comfy`, as the
SAMPLER nodes' samplers do. It is idempotent (ComfyUI may load a pack twice) and never touches
ComfyUI's own names or functions.

W2SD is not offered: it needs a second model, which a KSampler has no input for (the
``ZSamplingW2SD`` node has). ``standard`` would be ComfyUI's ``euler`` again.
"""

from __future__ import annotations

import functools
from typing import Any

import comfy.k_diffusion.sampling as k_sampling
import comfy.samplers

from zsampling.core.solvers import Euler
from zsampling.integrations.comfyui.sampling import SamplerSpec, sample_in_comfy
from zsampling.plugins.manager import default_registry

PREFIX = "zsampling_"
ROUTES = ("zigzag", "restart", "z2", "implicit-zigzag")


def ksampler_name(route: str) -> str:
    """The name a registered sampler has in ComfyUI's list: ``zsampling_`` + its name, with
    ComfyUI's underscores (``implicit-zigzag`` -> ``zsampling_implicit_zigzag``)."""
    return PREFIX + route.replace("-", "_")


def sampler_function(route: str) -> Any:
    """A ComfyUI sampler function running ``route`` with its default settings (the guider's cfg
    as its main guidance scale) and the Euler step: `sample_in_comfy` bound to that spec."""
    spec = SamplerSpec(default_registry().get("sampler", route, "sampler").cls, {}, Euler())
    spec.build(1.0)  # a route whose defaults cannot run fails at registration, not in a graph
    return functools.partial(sample_in_comfy, spec=spec)


def _name_lists() -> list[list[str]]:
    """ComfyUI's sampler-name lists, each once (``KSampler.SAMPLERS`` is ``SAMPLER_NAMES``
    unless another pack rebound one of them)."""
    lists: list[list[str]] = []
    for names in (
        comfy.samplers.KSAMPLER_NAMES,
        comfy.samplers.SAMPLER_NAMES,
        comfy.samplers.KSampler.SAMPLERS,
    ):
        if not any(names is seen for seen in lists):
            lists.append(names)
    return lists


def register_ksampler_samplers() -> list[str]:
    """Make the routes selectable in ComfyUI's sampler menus; returns their names."""
    added = []
    for route in ROUTES:
        name = ksampler_name(route)
        setattr(k_sampling, f"sample_{name}", sampler_function(route))
        for names in _name_lists():
            if name not in names:
                names.append(name)
        added.append(name)
    return added
