"""The embedded digits model, loaded through diffusers like any other model.

The folder (``unet/`` with a class-conditional ``UNet2DModel`` in safetensors, ``scheduler/`` with
its ``DDIMScheduler`` config) is read with ``from_pretrained``; prompts are digits (``"7"`` or
``"seven"``); the unconditional branch is the null class the model was trained with.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import Tensor

from zsampling.adapters.folders import loading, usable_device
from zsampling.core.component import Component
from zsampling.core.errors import InvalidArgument
from zsampling.core.levels import Process, TimestepTable
from zsampling.core.model import Conditioning
from zsampling.core.prediction import Prediction
from zsampling.digits.data import CLASSES, NAMES, NULL_CLASS, class_index

PACKAGED = Path(__file__).resolve().parents[1] / "models" / "digits"


class DigitsModel:
    """`ModelAdapter` over a class-conditional ``UNet2DModel`` and its scheduler config."""

    process = Process("vp")

    def __init__(self, unet: Any, table: TimestepTable, classes: int) -> None:
        self.unet = unet
        self.table = table
        self.classes = classes
        self.dtype = unet.dtype
        self.device = unet.device

    def latent_shape(self) -> tuple[int, ...]:
        cfg = self.unet.config
        return (int(cfg.in_channels), int(cfg.sample_size), int(cfg.sample_size))

    def sigma_range(self) -> tuple[float, float]:
        sig = self.table.sigmas
        return float(sig[0]), float(sig[-1])

    def label(self, prompt: str, field: str = "prompt") -> int:
        index = class_index(prompt)
        if index is None:
            raise InvalidArgument(
                field, prompt, f"a digit: {', '.join(CLASSES)} (or {NAMES[0]}, ..., {NAMES[-1]})"
            )
        return index

    def encode(
        self, prompts: Sequence[str], negative_prompts: Sequence[str] | None = None
    ) -> tuple[Conditioning, Conditioning]:
        cond = torch.tensor([self.label(p) for p in prompts], device=self.device)
        negatives = negative_prompts or [""] * len(prompts)
        uncond = torch.tensor(
            [NULL_CLASS if not n else self.label(n, "negative_prompt") for n in negatives],
            device=self.device,
        )
        return {"class_labels": cond}, {"class_labels": uncond}

    @torch.no_grad()
    def predict(self, x: Tensor, sigma: Tensor, cond: Conditioning) -> Prediction:
        t = self.table.timestep(sigma).to(device=self.device, dtype=torch.float32)
        eps = self.unet(x.to(self.dtype), t, class_labels=cond["class_labels"]).sample
        alpha, s = self.process.coefficients(sigma)
        a = alpha.view(-1, 1, 1, 1).to(x.device)
        n = s.view(-1, 1, 1, 1).to(x.device)
        eps64 = eps.to(torch.float64)
        x0 = (x.to(torch.float64) - n * eps64) / a
        return Prediction(x0.to(x.dtype), eps.to(x.dtype))

    def decode(self, x: Tensor) -> list[Any]:
        """8x8 grayscale PIL images (pixel = (x + 1) / 2 * 255, clipped)."""
        from PIL import Image

        pixels = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return [Image.fromarray(p[0].numpy(), mode="L") for p in pixels]


def load_digits_model(path: Path, device: str = "cpu") -> DigitsModel:
    """Load a digits folder with diffusers' ``from_pretrained`` (safetensors only)."""
    from diffusers import DDIMScheduler, UNet2DModel

    valid = "a folder holding unet/ (UNet2DModel, safetensors) and scheduler/ saved by diffusers"
    if not (path / "unet").is_dir() or not (path / "scheduler").is_dir():
        raise InvalidArgument("model.path", str(path), valid)
    target = usable_device("model.device", device)
    with loading("model.path", str(path), valid):
        unet = UNet2DModel.from_pretrained(path / "unet", use_safetensors=True).to(target).eval()
        sched = DDIMScheduler.from_pretrained(path / "scheduler")
    if unet.config.num_class_embeds is None:
        raise InvalidArgument("model.path", str(path), "a class-conditional UNet2DModel")
    table = TimestepTable(
        sched.alphas_cumprod, int(sched.config.steps_offset), bool(sched.config.set_alpha_to_one)
    )
    return DigitsModel(unet, table, int(unet.config.num_class_embeds) - 1)


class DigitsAdapter(Component):
    """The embedded class-conditional digits model (or any folder trained like it)."""

    name: ClassVar[str] = "digits"

    path: str | None = Field(None, description="Model folder; default: the one zsampling ships.")
    device: str = Field("cpu", description="torch device.")

    def folder(self) -> Path:
        return Path(self.path) if self.path else PACKAGED

    def load(self) -> DigitsModel:
        return load_digits_model(self.folder(), self.device)
