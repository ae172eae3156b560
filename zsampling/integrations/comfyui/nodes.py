"""The ComfyUI nodes: SAMPLER nodes for zsampling's samplers and SIGMAS nodes for its schedules.

=========================  ==========  ====================================================
node (class name)          output      what
=========================  ==========  ====================================================
``ZSamplingZigzag``        SAMPLER     Z-Sampling: every setting, three inversion modes
``ZSamplingRestart``       SAMPLER     Restart sampling
``ZSamplingW2SD``          SAMPLER     W2SD, with a second MODEL input for the weak model
``ZSamplingSampler``       SAMPLER     any registered sampler (plugins too), JSON settings
``ZSamplingUniformSigmas`` SIGMAS      diffusers' evenly spaced timesteps (the released
                                       Z-Sampling code's DDIM schedule)
``ZSamplingSigmas``        SIGMAS      any registered schedule (plugins too), JSON settings
``ZSamplingGuider``        GUIDER      a guider rule (APG, CFG-Zero*, ...), JSON settings
=========================  ==========  ====================================================

Every SAMPLER node has a ``solver`` (each registered solver: euler = DDIM, dpmpp-2m, ...). The
zigzag, restart and W2SD nodes take an optional ``sampler`` (a ComfyUI SAMPLER) that then makes
the denoise moves, the solver only inverting (`zsampling.integrations.comfyui.around`). The
samplers read their guidance from the guider (``-1``, the default) or from the node; see
`zsampling.integrations.comfyui.guidance` for how a scale reaches ComfyUI's CFG on each call.

This module is what the custom-node folder ``comfyui/zsampling_nodes`` exposes; it must be
imported inside ComfyUI (it imports ``comfy``), and never imports ComfyUI's ``server``.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import BaseModel

from zsampling.core.errors import InvalidArgument
from zsampling.core.kinds import Kind
from zsampling.core.schedule import check_levels
from zsampling.core.solvers import Solver
from zsampling.integrations.comfyui.guiders import RuleGuider, comfy_guiders, rule_of
from zsampling.integrations.comfyui.levels import levels_of, to_comfy
from zsampling.integrations.comfyui.sampling import SamplerSpec, comfy_sampler, validated
from zsampling.integrations.comfyui.widgets import describe, parse_settings, settings_from, widgets
from zsampling.plugins.manager import default_registry
from zsampling.plugins.registry import Registered
from zsampling.samplers import W2SD, Restart, Zigzag
from zsampling.schedules import Uniform

CATEGORY = "sampling/custom_sampling/zsampling"


def _solver_input() -> tuple[Any, ...]:
    names = default_registry().names("solver")
    return (
        names,
        {
            "default": "euler" if "euler" in names else names[0],
            "tooltip": (
                "The step formula, both ways: euler (= DDIM), dpmpp-2m (multistep), an ancestral "
                "or SDE solver (seeded noise on the way down; its zag is its deterministic "
                "form), or a plugin's."
            ),
        },
    )


def _solver(name: str) -> Solver:
    cls = default_registry().get("solver", name, "solver").cls
    return cls()  # type: ignore[return-value]


def _component(kind: Kind, name: str) -> Registered:
    return default_registry().get(kind, name, kind)


def comfy_samplers() -> list[str]:
    """The registered samplers a ComfyUI node can offer: all but those that ask for prompts of
    their own (``conditionings``, e.g. asymmetry-zigzag's zag prompt), which ComfyUI's
    positive/negative conditioning inputs cannot give them."""
    registry = default_registry()
    return [
        n for n in registry.names("sampler")
        if not callable(getattr(registry.components["sampler"][n].cls, "conditionings", None))
    ]


def _by_name(kind: Kind, preferred: str) -> dict[str, Any]:
    """A generic node's two inputs: the registered ``kind`` by name, and its JSON settings (the
    tooltip lists every component's settings and defaults)."""
    registry = default_registry()
    listed = {"sampler": comfy_samplers, "guider": comfy_guiders}.get(kind)
    names = listed() if listed is not None else registry.names(kind)
    listing = " | ".join(f"{n}: {describe(registry.components[kind][n].cls)}" for n in names)
    return {
        kind: (names, {"default": preferred if preferred in names else names[0]}),
        "settings": ("STRING", {"default": "{}", "multiline": True, "tooltip": listing}),
    }


class _Node:
    """Base of the pack's nodes: ComfyUI shows ``DESCRIPTION``, which is the class docstring."""

    CATEGORY = CATEGORY
    DESCRIPTION = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.DESCRIPTION = " ".join((cls.__doc__ or "").split())


class _SamplerNode(_Node):
    RETURN_TYPES = ("SAMPLER",)
    FUNCTION = "get_sampler"


AROUND_INPUT = (
    "SAMPLER",
    {
        "tooltip": (
            "Optional: a ComfyUI sampler (KSamplerSelect, SamplerDPMPP_2M_SDE, ...) that makes "
            "every denoise move, one step per call over the step's two sigmas (multistep "
            "history restarts each call; SDE noise is seeded per call). The zag inverts with "
            "the solver above."
        )
    },
)


def typed_sampler_node(cls: type[BaseModel], description: str, weak: bool = False) -> type:
    """A SAMPLER node class with one widget per setting of ``cls`` (and a solver)."""
    exclude = ("weak_model",) if weak else ()

    class Node(_SamplerNode):
        __doc__ = description

        @classmethod
        def INPUT_TYPES(cls_) -> dict[str, Any]:
            required: dict[str, Any] = {}
            if weak:
                required["weak_model"] = ("MODEL", {"tooltip": "The weak model that inverts."})
            required.update(widgets(cls, exclude))
            required["solver"] = _solver_input()
            return {"required": required, "optional": {"sampler": AROUND_INPUT}}

        def get_sampler(
            self, solver: str, weak_model: Any = None, sampler: Any = None, **values: Any
        ) -> tuple[Any]:
            settings = settings_from(cls, values)
            spec = SamplerSpec(cls, settings, _solver(solver), weak_model, around=sampler)
            return (comfy_sampler(spec),)

    Node.__name__ = Node.__qualname__ = f"{cls.__name__}SamplerNode"
    return Node


ZigzagNode = typed_sampler_node(
    Zigzag,
    "Z-Sampling (zigzag): each of the first zigzag_steps steps denoises at guidance, inverts at "
    "inversion_guidance and denoises again. Put it in SamplerCustomAdvanced with a CFGGuider.",
)
RestartNode = typed_sampler_node(
    Restart,
    "Restart sampling: jump back from restart_min to restart_max with fresh noise, rounds times.",
)
W2SDNode = typed_sampler_node(
    W2SD,
    "W2SD: invert with the weak model (same conditioning and guider), denoise with the guider's "
    "model.",
    weak=True,
)


class AnySamplerNode(_SamplerNode):
    """Any zsampling sampler registered in this Python environment (built-ins and installed
    plugins), with its settings as a JSON object; guidance defaults to the guider's cfg."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {**_by_name("sampler", "zigzag"), "solver": _solver_input()},
            "optional": {"weak_model": ("MODEL", {"tooltip": "A second model (W2SD's weak)."})},
        }

    def get_sampler(
        self, sampler: str, settings: str, solver: str, weak_model: Any = None
    ) -> tuple[Any]:
        cls = _component("sampler", sampler).cls
        if sampler not in comfy_samplers():
            raise InvalidArgument(
                "sampler",
                sampler,
                f"a sampler ComfyUI can drive ({', '.join(comfy_samplers())}): this one needs "
                "prompts of its own, which ComfyUI's conditioning inputs do not carry; use it "
                "with zsampling run or generate()",
            )
        values = parse_settings(settings, sampler)
        return (comfy_sampler(SamplerSpec(cls, values, _solver(solver), weak_model)),)


def schedule_sigmas(model: Any, schedule: Any) -> torch.Tensor:
    """A zsampling schedule's levels for a ComfyUI MODEL, as ComfyUI sigmas (float32)."""
    levels = levels_of(model)
    sigmas = check_levels(schedule, schedule.sigmas(levels))
    return to_comfy(sigmas, levels.process).to(torch.float32)


class _SigmasNode(_Node):
    RETURN_TYPES = ("SIGMAS",)
    FUNCTION = "get_sigmas"


class UniformSigmasNode(_SigmasNode):
    """Evenly spaced training timesteps on the model's own grid (SD-family models), as diffusers
    spaces them (leading / trailing / linspace), ending at DDIM's last level or 0: the schedule of
    the released Z-Sampling code."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",), **widgets(Uniform)}}

    def get_sigmas(self, model: Any, **values: Any) -> tuple[torch.Tensor]:
        return (schedule_sigmas(model, validated(Uniform, values)),)


class AnySigmasNode(_SigmasNode):
    """Any zsampling schedule registered in this Python environment (built-ins and installed
    plugins), with its settings as a JSON object."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",), **_by_name("schedule", "karras")}}

    def get_sigmas(self, model: Any, schedule: str, settings: str) -> tuple[torch.Tensor]:
        cls = _component("schedule", schedule).cls
        return (schedule_sigmas(model, validated(cls, parse_settings(settings, schedule))),)


class GuiderNode(_Node):
    """A zsampling guider (APG, CFG-Zero*, rescaled CFG, tangential CFG, ... and plugins' rules)
    as a GUIDER for SamplerCustomAdvanced: ComfyUI's positive and negative branches combined by
    the guider's rule at the cfg scale, which zsampling's SAMPLER nodes set per call. Settings
    are a JSON object (the tooltip lists each guider's)."""

    RETURN_TYPES = ("GUIDER",)
    FUNCTION = "get_guider"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "model": ("MODEL",),
                "positive": ("CONDITIONING",),
                "negative": ("CONDITIONING",),
                "cfg": ("FLOAT", {"default": 5.5, "min": 0.0, "max": 100.0, "step": 0.1}),
                **_by_name("guider", "apg"),
            }
        }

    def get_guider(
        self, model: Any, positive: Any, negative: Any, cfg: float, guider: str, settings: str
    ) -> tuple[Any]:
        made = RuleGuider(model, rule_of(guider, parse_settings(settings, guider)))
        made.set_conds(positive, negative)
        made.set_cfg(cfg)
        return (made,)


NODE_CLASS_MAPPINGS: dict[str, type] = {
    "ZSamplingZigzag": ZigzagNode,
    "ZSamplingRestart": RestartNode,
    "ZSamplingW2SD": W2SDNode,
    "ZSamplingSampler": AnySamplerNode,
    "ZSamplingUniformSigmas": UniformSigmasNode,
    "ZSamplingSigmas": AnySigmasNode,
    "ZSamplingGuider": GuiderNode,
}

NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {
    "ZSamplingZigzag": "Zigzag sampler (Z-Sampling)",
    "ZSamplingRestart": "Restart sampler (zsampling)",
    "ZSamplingW2SD": "W2SD sampler (zsampling)",
    "ZSamplingSampler": "zsampling sampler (any registered)",
    "ZSamplingUniformSigmas": "Uniform sigmas (diffusers spacing)",
    "ZSamplingSigmas": "zsampling sigmas (any registered schedule)",
    "ZSamplingGuider": "zsampling guider (APG, CFG-Zero*, ...)",
}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
