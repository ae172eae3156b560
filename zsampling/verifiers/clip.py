"""CLIP score as a verifier, from a local CLIP folder (the ``clip-score`` metric's model)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.model import ModelAdapter
from zsampling.metrics.clip import _load, clip_score, decoded_images


class ClipVerifier(Component):
    """CLIP score of each decoded candidate with its prompt (Ma et al.'s cheapest verifier),
    from a transformers CLIPModel + CLIPProcessor saved in a local folder; nothing is
    downloaded. Grade such a search with another model than this CLIP."""

    name: ClassVar[str] = "clip"

    path: str = Field(description="Local folder with a transformers CLIPModel and CLIPProcessor.")

    def score(self, model: ModelAdapter, latents: Tensor, prompts: list[str]) -> Tensor:
        clip, processor = _load(self.path, "search.verifier.path")
        field, role = "search.verifier.use", "verifier"
        return clip_score(
            clip, processor, decoded_images(model, latents, self.name, field, role), prompts
        )
