"""ImageReward (Xu et al., NeurIPS 2023) as a verifier, where the user has it installed."""

from __future__ import annotations

import importlib
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.errors import InvalidArgument
from zsampling.core.model import ModelAdapter
from zsampling.metrics.clip import decoded_images

PACKAGE = "ImageReward"


@lru_cache(maxsize=1)
def _load(checkpoint: str, config: str) -> Any:
    """The ImageReward model from a local checkpoint and its BLIP config; never a download: both
    files must exist before the package is asked to build anything."""
    for field, value in (("checkpoint", checkpoint), ("med_config", config)):
        if not Path(value).expanduser().is_file():
            raise InvalidArgument(
                f"search.verifier.{field}",
                value,
                "a local file (ImageReward.pt or its med_config.json; nothing is downloaded)",
            )
    try:
        reward = importlib.import_module(PACKAGE)
    except ModuleNotFoundError:
        raise InvalidArgument(
            "search.verifier.use",
            "image-reward",
            "a verifier whose package is installed: image-reward needs the ImageReward package "
            "(pip install image-reward), which is not; or use clip or implicit-classifier",
        ) from None
    return reward.load(
        str(Path(checkpoint).expanduser()), device="cpu", med_config=str(Path(config).expanduser())
    )


class ImageReward(Component):
    """Human-preference reward of each decoded candidate for its prompt, by ImageReward, from a
    local checkpoint. Optional: it loads only where the ``ImageReward`` package and both files
    are there, and says which is missing otherwise."""

    name: ClassVar[str] = "image-reward"

    checkpoint: str = Field(description="Local ImageReward.pt.")
    med_config: str = Field(
        description="Local med_config.json (the BLIP config it was saved with)."
    )

    def score(self, model: ModelAdapter, latents: Tensor, prompts: list[str]) -> Tensor:
        reward = _load(self.checkpoint, self.med_config)
        images = decoded_images(model, latents, self.name, "search.verifier.use", "verifier")
        with torch.no_grad():
            values = [float(reward.score(p, im)) for p, im in zip(prompts, images, strict=True)]
        return torch.tensor(values, dtype=torch.float64)
