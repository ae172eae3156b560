"""The ``unet-weights`` patch: run the pipeline with another UNet (how Diffusion-DPO is used).

Diffusion-DPO checkpoints (e.g. ``mhdang/dpo-sdxl-text2image-v1``) ship only a UNet; diffusers'
recipe is ``UNet2DConditionModel.from_pretrained(folder)`` and a pipeline built with
``unet=unet``. This patch does exactly that from a local folder. The patched model is a new
pipeline sharing every other component (text encoders, VAE, scheduler), so the original model is
left untouched and both can be used in one run (W2SD: base model weak, DPO model strong).

Weights must be safetensors. Pickle checkpoints (``.bin``) can run code when loaded, so they are
refused unless ``allow_pickle`` is set; even then diffusers loads them with
``torch.load(weights_only=True)``, which only rebuilds tensors.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from zsampling.adapters.folders import loading
from zsampling.core.component import Component
from zsampling.core.errors import InvalidArgument
from zsampling.core.model import ModelAdapter
from zsampling.patches.requires import require_diffusers

#: UNet config keys that must agree with the model's for the new UNet to fit the pipeline.
MUST_MATCH = ("in_channels", "out_channels", "cross_attention_dim", "addition_embed_type")


class UNetWeights(Component):
    """Replace the model's UNet by one loaded from a local folder (e.g. Diffusion-DPO)."""

    name: ClassVar[str] = "unet-weights"

    path: str = Field(description="Local folder of a UNet2DConditionModel (config.json + weights).")
    subfolder: str | None = Field(
        None, description="Subfolder holding the UNet, e.g. 'unet' inside a pipeline folder."
    )
    variant: str | None = Field(None, description="Weights variant, e.g. 'fp16'.")
    allow_pickle: bool = Field(
        False,
        description="Also accept pickle .bin weights (loaded with torch.load(weights_only=True)). "
        "Off by default: prefer safetensors.",
    )

    def folder(self) -> Path:
        """The UNet folder, checked: it exists, has a config and loadable weights."""
        folder = Path(self.path).expanduser() / (self.subfolder or "")
        field = "patches.unet-weights.path"
        if not (folder / "config.json").is_file():
            raise InvalidArgument(field, str(folder), "a local UNet folder with a config.json")
        if any(folder.glob("diffusion_pytorch_model*.safetensors")):
            return folder
        if any(folder.glob("diffusion_pytorch_model*.bin")):
            if self.allow_pickle:
                return folder
            raise InvalidArgument(
                field,
                str(folder),
                "a UNet with safetensors weights; this folder has only pickle (.bin) weights: "
                "convert them to safetensors, or set allow_pickle = true to load them with "
                "torch.load(weights_only=True)",
            )
        raise InvalidArgument(field, str(folder), "a folder with diffusion_pytorch_model weights")

    def apply(self, model: ModelAdapter) -> ModelAdapter:
        from diffusers import UNet2DConditionModel

        base = require_diffusers(model, self.name)
        folder = self.folder()
        with loading("patches.unet-weights.path", str(folder), "a loadable UNet folder"):
            unet = UNet2DConditionModel.from_pretrained(
                str(folder),
                torch_dtype=base.dtype,
                variant=self.variant,
                use_safetensors=None if self.allow_pickle else True,
            )
        if unet.device != base.device:
            unet = unet.to(base.device)
        old = base.unet.config
        mismatched = [k for k in MUST_MATCH if unet.config.get(k) != old.get(k)]
        if mismatched:
            found = {k: unet.config.get(k) for k in mismatched}
            wanted = {k: old.get(k) for k in mismatched}
            raise InvalidArgument(
                "patches.unet-weights.path",
                self.path,
                f"a UNet for this model ({wanted}); this one has {found}",
            )
        pipe = type(base.pipeline).from_pipe(base.pipeline, unet=unet)
        pipe.set_progress_bar_config(disable=True)
        return base.with_pipeline(pipe)
