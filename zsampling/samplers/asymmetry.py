"""Asymmetry Zigzag Sampling (Li, Ning and Moens, NeurIPS 2025): Z-Sampling whose zag uses
another prompt."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic import Field
from torch import Tensor

from zsampling.core.path import SamplingPath
from zsampling.samplers.reflection import reflect
from zsampling.samplers.zigzag import Zigzag

PROMPT = "{prompt}"


class AsymmetryZigzag(Zigzag):
    """Zigzag whose zag (the inversion) is conditioned on ``zag_prompt`` instead of the prompt.

    "Consistent Story Generation: Unlocking the Potential of Zigzag Sampling" (Mingxiao Li, Mang
    Ning, Marie-Francine Moens, NeurIPS 2025, arXiv 2506.09612) denoises with the full prompt and
    inverts with a different one (in their story setting, the subject's identity prompt alone),
    at the same guidance, on FLUX.1-dev and SDXL. The prompt gap then plays the role the
    guidance gap plays in Z-Sampling. ``zag_prompt`` may contain ``{prompt}``, replaced by each
    item's prompt (``"{prompt}"`` alone is plain zigzag with ``inversion_guidance``); without it,
    every item's zag uses the same text. ``inversion_guidance`` defaults to ``guidance``, as in
    the paper: at 0 a CFG model's zag would be unconditional and the zag prompt unused.
    """

    name: ClassVar[str] = "asymmetry-zigzag"

    zag_prompt: str = Field(
        description="The zag's prompt; '{prompt}' stands for the item's prompt ('' = the empty "
        "prompt)."
    )
    inversion_guidance: float | None = Field(  # type: ignore[assignment]
        None, ge=0, description="gamma2: guidance scale of the zag; default: `guidance`."
    )

    def conditionings(self, prompts: Sequence[str]) -> dict[str, list[str]]:
        """The zag's prompt for each item (encoded once per run, used by every zag)."""
        return {"zag": [self.zag_prompt.replace(PROMPT, p) for p in prompts]}

    def sample(self, x: Tensor, path: SamplingPath) -> Tensor:
        zag = self.guidance if self.inversion_guidance is None else self.inversion_guidance
        return reflect(
            x,
            path,
            guidance=self.guidance,
            inversion_guidance=zag,
            reflection_steps=self.check_steps(path.steps),
            rounds=self.rounds,
            evaluate_at=self.inversion,
            inversion_model="main",
            inversion_conditioning="zag",
        )
