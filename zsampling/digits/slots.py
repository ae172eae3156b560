"""Prompts of several digits: one learned embedding per (slot, digit), summed.

The digit-pairs model is told "3 on the left, 7 on the right" as
``E[slot 0, 3] + E[slot 1, 7]``, added to the UNet's timestep embedding (``UNet2DModel`` with
``class_embed_type="identity"``). Nothing tells the network where a slot's digit goes but what it
learns, so the model has to bind each digit to its place, as a text-to-image model binds words to
regions; where the training data rarely shows a combination, it gets that binding wrong. The
digit value ``NULL_CLASS`` (10) in a slot is "nothing asked", the unconditional branch.

It is a diffusers model (``ModelMixin`` + ``ConfigMixin``), so it saves and loads like the UNet
(``save_pretrained``/``from_pretrained``, safetensors).
"""

from __future__ import annotations

import torch
from diffusers import ModelMixin
from diffusers.configuration_utils import ConfigMixin, register_to_config
from torch import Tensor, nn

from zsampling.digits.data import NULL_CLASS


class SlotEmbedding(ModelMixin, ConfigMixin):
    """``labels`` (B, slots) of digits 0-9 or `NULL_CLASS` -> (B, dim) conditioning vectors."""

    @register_to_config
    def __init__(self, slots: int = 2, dim: int = 128) -> None:
        super().__init__()
        self.table = nn.Embedding(slots * (NULL_CLASS + 1), dim)

    def forward(self, labels: Tensor) -> Tensor:
        slots = int(self.config["slots"])
        offsets = torch.arange(slots, device=labels.device) * (NULL_CLASS + 1)
        out: Tensor = self.table(labels.long() + offsets).sum(dim=1)
        return out
