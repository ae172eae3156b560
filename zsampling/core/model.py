"""What a model is to zsampling: the `ModelAdapter` protocol, and the components that make one.

An *adapter component* (``[model] use = "..."``) is settings whose ``load()`` builds a
`ModelAdapter`; a *patch* (``[[model.patches]]``) turns one `ModelAdapter` into another.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor

from zsampling.core.levels import Process, TimestepTable
from zsampling.core.prediction import Prediction

Conditioning = dict[str, Tensor]
"""Batch-first tensors a model is conditioned on; the guider concatenates branches row-wise."""


@runtime_checkable
class ModelAdapter(Protocol):
    """What samplers need from a model, whatever it predicts and however it is conditioned.

    ``predict`` may be asked about a level other than the one ``x`` sits at (Z-Sampling's
    ``target`` and ``official`` zags do that on purpose): adapters feed ``x`` to the network as
    they would at level ``sigma`` and return the pair consistent with that level.
    """

    @property
    def process(self) -> Process: ...

    @property
    def table(self) -> TimestepTable | None:
        """The discrete training grid, for models trained on one (None otherwise)."""
        ...

    @property
    def dtype(self) -> torch.dtype: ...

    @property
    def device(self) -> torch.device: ...

    def latent_shape(self) -> tuple[int, ...]:
        """Shape of one latent, without the batch dimension."""
        ...

    def sigma_range(self) -> tuple[float, float]:
        """Smallest and largest level the model was trained on."""
        ...

    def encode(
        self, prompts: Sequence[str], negative_prompts: Sequence[str] | None = None
    ) -> tuple[Conditioning, Conditioning]:
        """Encode prompts once per run: ``(cond, uncond)``, one row per prompt."""
        ...

    def predict(self, x: Tensor, sigma: Tensor, cond: Conditioning) -> Prediction:
        """One batched network call; ``sigma`` holds one float64 level per row."""
        ...

    def decode(self, x: Tensor) -> Any:
        """Turn final latents into outputs (images, or the latents themselves)."""
        ...


@runtime_checkable
class AdapterComponent(Protocol):
    """``[model] use = "..."``: settings whose ``load()`` builds the model (never on validation)."""

    name: ClassVar[str]

    def load(self) -> ModelAdapter: ...


@runtime_checkable
class Patch(Protocol):
    """``[[model.patches]]``: ``apply(model)`` returns the changed model, in config order."""

    name: ClassVar[str]

    def apply(self, model: ModelAdapter) -> ModelAdapter: ...


@runtime_checkable
class GuidanceEmbedding(Protocol):
    """A `ModelAdapter` that takes the guidance scale as an input of its network.

    Guidance-distilled models (FLUX.1-dev embeds the scale; it has no unconditional branch) and
    denoisers that do classifier-free guidance themselves (A1111's ``CFGDenoiser``) declare it
    by having ``predict_guided``. A `zsampling.core.rules.GuidanceRule` guider then makes one
    conditional call per guided call and hands it that call's scale, so zigzag's per-call scales
    reach the network.
    """

    def predict_guided(
        self, x: Tensor, sigma: Tensor, cond: Conditioning, scale: float
    ) -> Prediction:
        """`ModelAdapter.predict` at guidance ``scale`` (one batched network call)."""
        ...
