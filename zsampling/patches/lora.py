"""The ``lora`` patch: load a LoRA with diffusers' own ``load_lora_weights``.

diffusers does LoRA through the optional ``peft`` package; without it this patch says so (and
how to install it) instead of failing deep inside diffusers. The LoRA is loaded into the model's
pipeline *in place* (as ``pipe.load_lora_weights`` does) under ``adapter_name`` with weight
``scale``: a model without the LoRA (say, W2SD's weak model) must be loaded separately.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from zsampling.adapters.folders import loading
from zsampling.core.component import Component
from zsampling.core.errors import InvalidArgument
from zsampling.core.model import ModelAdapter
from zsampling.patches.requires import require_diffusers


def peft_available() -> bool:
    """Whether ``peft`` is installed (what diffusers' LoRA loading needs)."""
    return importlib.util.find_spec("peft") is not None


class Lora(Component):
    """Load a LoRA (safetensors) into the model's UNet and text encoders."""

    name: ClassVar[str] = "lora"

    path: str = Field(description="Local LoRA file (.safetensors) or the folder holding it.")
    weight_name: str | None = Field(
        None, description="File name inside a folder; default: diffusers' pytorch_lora_weights."
    )
    scale: float = Field(1.0, description="LoRA strength (diffusers' adapter weight).")
    adapter_name: str = Field("lora", description="Name of the adapter inside the pipeline.")

    def apply(self, model: ModelAdapter) -> ModelAdapter:
        base = require_diffusers(model, self.name)
        if not peft_available():
            raise InvalidArgument(
                "patches.lora",
                self.path,
                "LoRA loading needs the optional 'peft' package: pip install peft",
            )
        path = Path(self.path).expanduser()
        weight_name: str | None
        if path.is_file():
            folder, weight_name = path.parent, self.weight_name or path.name
        elif path.is_dir():
            folder, weight_name = path, self.weight_name
        else:
            raise InvalidArgument(
                "patches.lora.path", self.path, "an existing local file or folder"
            )
        if weight_name is not None and not weight_name.endswith(".safetensors"):
            raise InvalidArgument(
                "patches.lora.weight_name", weight_name, "a .safetensors file (pickle is refused)"
            )
        pipe = base.pipeline
        with loading(
            "patches.lora.path", self.path, "a diffusers LoRA (safetensors) for this model"
        ):
            pipe.load_lora_weights(
                str(folder),
                weight_name=weight_name,
                adapter_name=self.adapter_name,
                use_safetensors=True,
            )
            pipe.set_adapters([self.adapter_name], adapter_weights=[self.scale])
        return base
