"""True classifier-free guidance on a guidance-distilled model (FLUX.1-dev's ``true_cfg_scale``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from zsampling.core.cfg import CFG
from zsampling.core.errors import InvalidArgument
from zsampling.core.guidance import EvaluationCounter
from zsampling.core.model import Conditioning, GuidanceEmbedding, ModelAdapter
from zsampling.core.rules import BatchedGuider


class TrueCFG(CFG):
    """Both branches at the call's embedded scale, combined as ``neg + s * (cond - neg)``.

    What ``FluxPipeline(..., negative_prompt=..., true_cfg_scale=s)`` does: a guidance-distilled
    transformer gets the sampler's scale of the call (zigzag's ``guidance`` or
    ``inversion_guidance``) as its guidance input in *both* the conditional and the negative
    branch, and the two velocities are then combined with the fixed ``true_cfg_scale`` (batched
    in one transformer call). Without negative prompts the empty prompt is the negative branch
    (the pipeline's ``negative_prompt=""``). At ``true_cfg_scale = 1`` only the conditional branch
    is evaluated, which is the pipeline without true CFG. Only for models that embed the scale:
    on others (FLUX.1-schnell, SD3) the sampler's guidance already is the CFG scale, so use
    ``cfg``.
    """

    name: ClassVar[str] = "true-cfg"

    true_cfg_scale: float = Field(
        ge=0,
        description="The fixed scale the two branches are combined with (diffusers' "
        "true_cfg_scale; 1 = no true CFG).",
    )

    def embedded_scales(self, scale: float) -> tuple[float, float]:
        return scale, self.true_cfg_scale

    def bind(
        self,
        model: ModelAdapter,
        cond: Conditioning,
        uncond: Conditioning | None,
        counter: EvaluationCounter | None = None,
    ) -> BatchedGuider:
        if not isinstance(model, GuidanceEmbedding):
            raise InvalidArgument(
                "guider.use",
                self.name,
                "a guider for this model: it does not take the guidance scale as an input "
                "(true CFG is for guidance-distilled models such as FLUX.1-dev); here the "
                "sampler's guidance is the CFG scale already, so use 'cfg'",
            )
        return super().bind(model, cond, uncond, counter)
