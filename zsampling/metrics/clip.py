"""CLIP score from a local CLIP folder (for users who have one; nothing is downloaded)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.errors import InvalidArgument
from zsampling.core.model import ModelAdapter


@lru_cache(maxsize=2)
def _load(path: str, field: str = "metrics.path") -> tuple[Any, Any]:
    """The CLIP model and processor in ``path``, or an `InvalidArgument` naming ``field``."""
    from transformers import CLIPModel, CLIPProcessor

    folder = Path(path).expanduser()
    valid = "a local CLIP folder saved by transformers (CLIPModel + CLIPProcessor, safetensors)"
    if not folder.is_dir():
        raise InvalidArgument(field, path, valid)
    try:
        model = CLIPModel.from_pretrained(folder, use_safetensors=True, local_files_only=True)
        processor = CLIPProcessor.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InvalidArgument(field, path, f"{valid} (loading failed: {first})") from None
    return model.eval(), processor


def clip_score(model: Any, processor: Any, images: list[Any], prompts: list[str]) -> Tensor:
    """``100 * max(cos(image embedding, text embedding), 0)`` per pair (Hessel et al., 2021)."""
    inputs = processor(
        text=prompts, images=images, return_tensors="pt", padding=True, truncation=True
    )
    with torch.no_grad():
        img = model.get_image_features(pixel_values=inputs["pixel_values"])
        txt = model.get_text_features(
            input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
        )
    img = getattr(img, "pooler_output", img)
    txt = getattr(txt, "pooler_output", txt)
    cos = torch.nn.functional.cosine_similarity(img, txt, dim=-1)
    return 100.0 * cos.clamp(min=0)


class ClipScore(Component):
    """CLIP score of each image with its prompt, from a CLIP model in a local folder."""

    name: ClassVar[str] = "clip-score"

    path: str = Field(description="Local folder with a transformers CLIPModel and CLIPProcessor.")

    def score(self, model: ModelAdapter, latents: Tensor, prompts: list[str]) -> Tensor:
        clip, processor = _load(self.path)
        return clip_score(clip, processor, decoded_images(model, latents, self.name), prompts)


def decoded_images(
    model: ModelAdapter,
    latents: Tensor,
    name: str,
    field: str = "metrics.use",
    role: str = "metric",
) -> list[Any]:
    """The RGB images ``model`` decodes ``latents`` to, or an `InvalidArgument` naming ``field``
    when it decodes to something else (the embedded testbeds' latents are their samples)."""
    images = model.decode(latents)
    if not isinstance(images, list) or not images or isinstance(images[0], Tensor):
        raise InvalidArgument(field, name, f"a {role} for this model ({name} needs decoded images)")
    return [im.convert("RGB") for im in images]
