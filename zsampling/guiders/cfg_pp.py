"""CFG++ (Chung et al., "CFG++: Manifold-constrained Classifier Free Guidance for Diffusion
Models", ICLR 2025): step to the guided ``x0``, renoise with the unconditional ``eps``."""

from __future__ import annotations

from typing import ClassVar

from zsampling.core.cfg import CFG
from zsampling.core.prediction import Prediction
from zsampling.core.rules import GuidanceCall


class CFGPlusPlus(CFG):
    """CFG++: ``x' = alpha' x0_guided + s' eps_uncond`` (DDIM/Euler), and its multistep form.

    Plain CFG renoises with the guided ``eps``, which pushes the latent off the data manifold at
    large scales; CFG++ keeps the unconditional noise, so its scale ``lambda`` lives in [0, 1]
    (0: unconditional sampling, 1: the conditional ``x0`` with unconditional noise). The
    sampler's ``guidance`` *is* ``lambda`` (as ComfyUI's ``*_cfg_pp`` samplers take their CFG
    value): scales above 1 extrapolate, outside the paper's range. On a first-order step, CFG++
    at ``lambda`` moves the latent as plain CFG at ``w = lambda * sigma_i / (sigma_i -
    sigma_{i+1})`` would (``sigma = s / alpha``): a step-dependent equivalent scale, far above
    ``lambda`` when steps are short.

    The guided call returns the guided pair with the unconditional branch as its ``renoise``
    (see `Prediction`): DDIM, Euler and DPM-Solver++(2M) step with it; other solvers are refused.
    An inversion (``direction == "invert"``, Z-Sampling's zag) is the exact inverse of that
    step, ``x_up = alpha x0_uncond + s eps_guided`` (the roles swap: undo the step with the
    predictions made where the latent sits), so a zag with the same scale undoes a zig up to
    the change of the evaluation point. Both branches are evaluated at every scale but 0, also
    at 1, where CFG++ is not the conditional branch alone.
    """

    name: ClassVar[str] = "cfg-pp"

    def combine_predictions(
        self, cond: Prediction, uncond: Prediction, call: GuidanceCall
    ) -> Prediction:
        guided = super().combine_predictions(cond, uncond, call)
        if call.context.direction == "invert":
            return Prediction(uncond.x0, uncond.eps, renoise=guided)
        return Prediction(guided.x0, guided.eps, renoise=uncond)

    def conditional_at_one(self) -> bool:
        return False
