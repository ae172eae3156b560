"""Guidance per call inside ComfyUI's sampling.

A ComfyUI sampler function gets ``model(x, sigma, model_options=..., seed=..., denoise_mask=...)``:
the guider behind it holds one CFG scale (``CFGGuider.cfg``) and the call takes none. Z-Sampling
needs two (the zig's strong scale, the zag's weak one), restart and plugins may want others, so
`ScaledCall` makes the scale a per-call argument:

1. **The scale.** For the call, the guider's own ``cfg`` is set to the scale asked for and put
   back afterwards. ComfyUI's whole CFG path then runs at that scale as if the user had set it:
   ``sampling_function``'s CFG, a ``sampler_cfg_function`` (RescaleCFG, ...) and every pre- and
   post-CFG function (CFGZeroStar, PAG, ...) see ``cond_scale`` = the per-call scale. The
   alternatives measured in this ComfyUI version do not: a ``sampler_post_cfg_function`` that
   recomputes ``uncond + s * (cond - uncond)`` runs after the guider's own CFG at the guider's
   scale (so a ``sampler_cfg_function`` and the functions before it saw the wrong scale, and
   its result is thrown away), and ``sampler_cfg_function`` has a single slot that would
   overwrite another node's.
2. **The unused branch.** At scale 1 ComfyUI itself skips the unconditional branch (its cfg1
   optimisation). At scale 0 the conditional branch is dropped by a ``calc_cond_batch`` wrapper
   (ComfyUI's wrapper lists chain, unlike the one-slot ``sampler_calc_cond_batch_function``)
   that evaluates only the negative conditioning and hands its prediction back for both, so the
   guided result is exactly the unconditional prediction. Both skips are off when another node
   set ``disable_cfg1_optimization`` (it wants both branches).
3. **The per-call changes** go into a copy of ``extra_args["model_options"]``, never into the
   guider's or the model's options.
4. **Where the call is made.** A guider that reads ``zsampling_context`` (zsampling's own guider
   node) gets the path's `GuidanceContext` for the call (level, direction): a rule whose state
   follows the path (APG's momentum skips the zags) then runs as in zsampling's own run.
5. **The count.** The same wrapper counts what ComfyUI really evaluates: each ``calc_cond_batch``
   call, and its rows (batch times the branches present), into an `EvaluationCounter`.

Guiders: ``CFGGuider`` and any guider that keeps its ``predict_noise`` (``BasicGuider`` too, which
has no negative conditioning and so allows only scale 1), and ``PerpNegGuider`` and zsampling's
own guider node (`zsampling.integrations.comfyui.guiders`), which read their ``cfg`` per call too
(their branches are all evaluated at scale 0: the guider itself decides what it needs).
Guiders that combine several scales their own way (``DualCFGGuider``) have no single scale to
set and are refused with a message saying so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import comfy.model_patcher
import comfy.patcher_extension as extension
import comfy.samplers
from torch import Tensor

from zsampling.core.errors import InvalidArgument
from zsampling.core.guidance import EvaluationCounter, GuidanceContext

WRAPPER_KEY = "zsampling-per-call-guidance"
PLAIN = "cfg"
SCALE_ONLY = "scale-only"
SCALE_ONLY_GUIDERS = {("comfy_extras.nodes_perpneg", "Guider_PerpNeg")}


def guider_of(model: Any) -> Any:
    """The ComfyUI guider behind a sampler function's ``model`` (``KSamplerX0Inpaint``)."""
    guider = getattr(model, "inner_model", None)
    if not isinstance(guider, comfy.samplers.CFGGuider):
        raise InvalidArgument(
            "guider",
            type(guider).__name__,
            "a ComfyUI guider built on comfy.samplers.CFGGuider (CFGGuider, BasicGuider, "
            "PerpNegGuider); zsampling's samplers set its scale per call",
        )
    return guider


def guider_kind(guider: Any) -> str:
    """``cfg`` (plain CFG, ComfyUI's ``predict_noise``) or ``scale-only``; refuses the others."""
    if type(guider).predict_noise is comfy.samplers.CFGGuider.predict_noise:
        return PLAIN
    if any((c.__module__, c.__name__) in SCALE_ONLY_GUIDERS for c in type(guider).__mro__):
        return SCALE_ONLY
    if getattr(guider, "zsampling_scale_per_call", False):  # zsampling's own GUIDER nodes
        return SCALE_ONLY
    raise InvalidArgument(
        "guider",
        type(guider).__name__,
        "a guider with one CFG scale read per call: CFGGuider, BasicGuider, PerpNegGuider or "
        "zsampling's guider node "
        "(this one combines its scales in its own predict_noise, so zsampling cannot choose "
        "a scale per call)",
    )


class ScaledCall:
    """``call(x, sigma, scale) -> denoised``: ComfyUI's sampler-side model at a per-call scale.

    See the module docstring for how the scale gets there and which branch is skipped.
    """

    def __init__(
        self, model: Any, extra_args: Mapping[str, Any], counter: EvaluationCounter
    ) -> None:
        self.model = model
        self.extra_args = dict(extra_args)
        self.guider = guider_of(model)
        self.kind = guider_kind(self.guider)
        self.reads_context = hasattr(type(self.guider), "zsampling_context")
        self.counter = counter
        conds = getattr(self.guider, "conds", None) or self.guider.original_conds
        self.has_negative = conds.get("negative") is not None

    def __call__(
        self, x: Tensor, sigma: Tensor, scale: float, context: GuidanceContext | None = None
    ) -> Tensor:
        if not self.has_negative and not math.isclose(scale, 1.0):
            raise InvalidArgument(
                "a guidance scale the sampler asked for",
                scale,
                f"only 1 works with {type(self.guider).__name__}, which has no negative "
                "conditioning; for Z-Sampling's guidance gap use CFGGuider with a negative prompt",
            )
        options = comfy.model_patcher.create_model_options_clone(
            self.extra_args.get("model_options", {})
        )
        skips = not options.get("disable_cfg1_optimization", False)
        drop_cond = self.kind == PLAIN and skips and scale == 0.0
        extension.add_wrapper_with_key(
            extension.WrappersMP.CALC_COND_BATCH,
            WRAPPER_KEY,
            _BranchWrapper(self.counter, drop_cond),
            options,
            is_model_options=True,
        )
        previous = self.guider.cfg
        self.guider.cfg = scale
        if self.reads_context:
            self.guider.zsampling_context = context
        try:
            out: Tensor = self.model(x, sigma, **{**self.extra_args, "model_options": options})
        finally:
            self.guider.cfg = previous
            if self.reads_context:
                self.guider.zsampling_context = None
        return out


class _BranchWrapper:
    """A ``calc_cond_batch`` wrapper: counts every evaluation; on the guided call (the first of
    the call, ``[cond, uncond]``) drops the conditional branch when asked to."""

    def __init__(self, counter: EvaluationCounter, drop_cond: bool) -> None:
        self.counter = counter
        self.drop_cond = drop_cond
        self.first = True

    def __call__(
        self, executor: Any, model: Any, conds: list[Any], x: Tensor, *args: Any, **kw: Any
    ) -> list[Tensor]:
        guided, self.first = self.first and len(conds) == 2, False
        drop = guided and self.drop_cond and conds[1] is not None
        if drop:
            conds = [None, conds[1]]
        batch = x.shape[0]
        self.counter.model_calls += 1
        self.counter.rows += batch * sum(c is not None for c in conds)
        if guided:
            self.counter.cond_rows += batch if conds[0] is not None else 0
            self.counter.uncond_rows += batch if conds[1] is not None else 0
        out: list[Tensor] = executor(model, conds, x, *args, **kw)
        if drop:
            out = [out[1], out[1]]
        return out
