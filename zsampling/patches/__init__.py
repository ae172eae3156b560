"""Patches: components that change a loaded model before sampling (``apply(model) -> model``).

- ``unet-weights`` (`UNetWeights`): swap in another UNet, e.g. a Diffusion-DPO fine-tune.
- ``lora`` (`Lora`): load a LoRA with diffusers' ``load_lora_weights`` (needs ``peft``).
- ``dynamic-threshold`` (`zsampling.patches.threshold`): wraps any model's predictions.

The diffusers patches act on the pipeline itself, so they come before wrapping patches (such as
thresholding) in a stack. Importing this package does not import diffusers.
"""

from zsampling.patches.lora import Lora
from zsampling.patches.unet_weights import UNetWeights

__all__ = ["Lora", "UNetWeights"]
