"""zsampling's guiders as ComfyUI guiders (the GUIDER socket of ``SamplerCustomAdvanced``).

`RuleGuider` is a ComfyUI ``CFGGuider`` whose ``predict_noise`` is a zsampling guider rule
(`zsampling.core.rules.GuidanceRule`: APG, CFG-Zero*, rescaled CFG, tangential CFG, ...) instead
of ComfyUI's CFG. The rule is bound once per sampling run to a model adapter over ComfyUI's
model (`_BranchModel`), exactly as zsampling's own run binds it to a diffusers or k-diffusion
model, so a rule with state (APG's momentum) keeps it from step to step, and its guidance
interval (``start``/``stop``) reads the step from the run's sigmas.

The branches are ComfyUI's: the positive and negative CONDITIONING, evaluated by ComfyUI's
``calc_cond_batch`` (one batched call when both are needed, as ComfyUI's CFG does, with its
wrappers, hooks, ControlNets and area conditioning). The scale is the guider's ``cfg``, read on
every call, so zsampling's own SAMPLER nodes set it per call (the zig's and the zag's scales).

Guiders that need more than the two branches (PAG, SEG, SLG: a perturbed branch from inside
the network; AutoGuidance: a second model; true CFG: a guidance-embedding model) and CFG++
(its unconditional renoise reaches a sampler only through ComfyUI's ``*_cfg_pp`` samplers) are
not offered: `refusal` says why for each.
"""

from __future__ import annotations

from typing import Any

import comfy.samplers
import torch
from torch import Tensor

from zsampling.core.errors import InvalidArgument
from zsampling.core.guidance import EvaluationCounter, GuidanceContext
from zsampling.core.levels import Process, TimestepTable
from zsampling.core.model import Conditioning
from zsampling.core.prediction import Prediction
from zsampling.core.rules import BatchedGuider, GuidanceRule
from zsampling.guiders import CFGPlusPlus
from zsampling.integrations.comfyui.levels import ComfyLevels, to_levels
from zsampling.integrations.comfyui.sampling import ComfyIO, prediction_of, validated
from zsampling.plugins.manager import default_registry

BRANCH = "branch"
"""The conditioning key that marks a row's branch: 1 positive, 0 negative."""


def refusal(cls: type) -> str | None:
    """Why the guider class ``cls`` cannot be a ComfyUI guider, or None when it can."""
    if not (isinstance(cls, type) and issubclass(cls, GuidanceRule)):
        return "it is not a combine rule (zsampling.core.rules.GuidanceRule)"
    if issubclass(cls, CFGPlusPlus):
        return (
            "it renoises with the unconditional branch, which a guider cannot hand a ComfyUI "
            "sampler (ComfyUI's *_cfg_pp samplers do CFG++)"
        )
    if cls.bind is not GuidanceRule.bind:
        return (
            "it needs a branch ComfyUI's positive and negative conditioning do not give (a "
            "perturbed network, a second model, or a guidance-embedding model)"
        )
    return None


def comfy_guiders() -> list[str]:
    """The registered guiders (plugins too) that run as ComfyUI guiders."""
    registry = default_registry()
    return [
        n for n in registry.names("guider") if refusal(registry.components["guider"][n].cls) is None
    ]


def rule_of(name: str, settings: dict[str, Any]) -> GuidanceRule:
    """The registered guider ``name`` with ``settings``, or an `InvalidArgument` by name."""
    cls = default_registry().get("guider", name, "guider").cls
    why = refusal(cls)
    if why is not None:
        raise InvalidArgument(
            "guider", name, f"a guider that runs in ComfyUI ({', '.join(comfy_guiders())}): {why}"
        )
    rule = validated(cls, settings)
    assert isinstance(rule, GuidanceRule)
    return rule


class _BranchModel(ComfyIO):
    """A zsampling model adapter over ComfyUI's model inside one guider call: rows marked 1 in
    the ``branch`` conditioning are evaluated with the positive conditioning, 0 the negative."""

    def __init__(self, guider: RuleGuider, levels: ComfyLevels) -> None:
        self.guider = guider
        self.levels = levels
        self.process: Process = levels.process
        self.table: TimestepTable | None = levels.table
        self.dtype = torch.float32
        self.device = torch.device("cpu")
        self.timestep: Tensor | None = None
        self.model_options: dict[str, Any] = {}

    def latent_shape(self) -> tuple[int, ...]:
        raise InvalidArgument("latent_shape", None, "ComfyUI's latent (given by the graph)")

    def sigma_range(self) -> tuple[float, float]:
        return self.levels.sigma_range()

    def predict(self, x: Tensor, sigma: Tensor, cond: Conditioning) -> Prediction:
        assert self.timestep is not None
        branch = cond[BRANCH].to(torch.bool)
        conds = self.guider.conds
        names = {True: "positive", False: "negative"}
        half = x.shape[0] // 2
        timestep = self.timestep[:1].repeat(x.shape[0])
        model = self.guider.inner_model
        if bool(branch.all()) or not bool(branch.any()):
            name = names[bool(branch[0])]
            (out,) = comfy.samplers.calc_cond_batch(
                model, [conds.get(name)], x, timestep, self.model_options
            )
        else:  # zsampling's batched pair [uncond rows, cond rows] on the same x: one call
            neg, pos = comfy.samplers.calc_cond_batch(
                model, [conds.get("negative"), conds.get("positive")], x[:half],
                timestep[:half], self.model_options,
            )  # fmt: skip
            out = torch.cat([neg, pos])
        return prediction_of(x, timestep, out, self.process)


class RuleGuider(comfy.samplers.CFGGuider):
    """A ComfyUI guider running a zsampling guider rule (module docstring)."""

    zsampling_scale_per_call = True
    """Read by `zsampling.integrations.comfyui.guidance`: ``cfg`` is read on every call."""
    zsampling_context: GuidanceContext | None = None
    """Set by zsampling's SAMPLER nodes for each call: where on their path it is made."""

    def __init__(self, model_patcher: Any, rule: GuidanceRule) -> None:
        super().__init__(model_patcher)
        self.rule = rule
        self.counter = EvaluationCounter()
        self._bound: tuple[BatchedGuider, _BranchModel] | None = None

    def sample(self, *args: Any, **kwargs: Any) -> Tensor:
        self._bound = None  # a new run: the rule's state starts afresh
        out: Tensor = super().sample(*args, **kwargs)
        return out

    def predict_noise(
        self, x: Tensor, timestep: Tensor, model_options: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> Tensor:  # fmt: skip
        bound, adapter = self._bind(x)
        adapter.timestep, adapter.model_options = timestep, model_options or {}
        level = float(to_levels(timestep[:1], adapter.process)[0])
        context = self.zsampling_context or self._context(timestep, model_options)
        pred = bound(x, level, float(self.cfg), context)
        if pred.renoise is not None:
            raise InvalidArgument(
                "guider", self.rule.name, "a guider whose prediction is one x0 (no renoise)"
            )
        return pred.x0.to(x.dtype)

    def _bind(self, x: Tensor) -> tuple[BatchedGuider, _BranchModel]:
        if self._bound is None or self._bound[0].cond[BRANCH].shape[0] != x.shape[0]:
            adapter = _BranchModel(self, ComfyLevels(self.inner_model.model_sampling))
            rows = x.shape[0]
            negative = self.conds.get("negative") is not None
            uncond = {BRANCH: torch.zeros(rows)} if negative else None
            bound = self.rule.bind(adapter, {BRANCH: torch.ones(rows)}, uncond, self.counter)
            self._bound = (bound, adapter)
        return self._bound

    @staticmethod
    def _context(timestep: Tensor, model_options: dict[str, Any] | None) -> GuidanceContext:
        """The step of this call in the run's sigmas (for a rule's guidance interval), for a
        ComfyUI sampler's call (always a denoise)."""
        sigmas = (model_options or {}).get("transformer_options", {}).get("sample_sigmas")
        if sigmas is None:
            return GuidanceContext(direction="denoise")
        here = float(timestep.flatten()[0])
        matches = [i for i, s in enumerate(sigmas.tolist()) if abs(s - here) <= 1e-6 * (1 + s)]
        steps = len(sigmas) - 1
        return GuidanceContext(matches[0] if matches else None, steps, "denoise")
