"""The embedded digits models, loaded through diffusers like any other model.

Two models ship with zsampling, both trained here on scikit-learn's digits
(`zsampling.digits.train`):

- ``digits``: one 8x8 digit per prompt (``"7"`` or ``"seven"``), a class-conditional
  ``UNet2DModel`` (class 10 is the unconditional branch);
- ``digit-pairs``: two digits side by side on an 8x16 canvas (``"3 7"``: 3 left, 7 right), a
  ``UNet2DModel`` conditioned through a `zsampling.digits.slots.SlotEmbedding`. It was trained
  mostly on twins (``"7 7"``), so prompts with two different digits go against its training
  statistics: the hard-prompt testbed, where standard sampling gets a real share wrong.

A folder holds ``unet/`` (safetensors), ``scheduler/`` (its ``DDIMScheduler`` config) and, for
pairs, ``slots/``; ``weak/`` (the same layout) is an early checkpoint of the same training, the
weak model W2SD inverts with.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import Tensor

from zsampling.adapters.folders import loading, usable_device
from zsampling.adapters.perturbation import UNET_STACK, perturbed_network
from zsampling.core.component import Component
from zsampling.core.errors import InvalidArgument
from zsampling.core.levels import Process, TimestepTable
from zsampling.core.model import Conditioning
from zsampling.core.perturbation import Perturbation
from zsampling.core.prediction import Prediction
from zsampling.digits.data import CLASSES, NAMES, NULL_CLASS, class_index

MODELS = Path(__file__).resolve().parents[1] / "models"
PACKAGED = MODELS / "digits"
PACKAGED_PAIRS = MODELS / "digit-pairs"


class DigitsModel:
    """`ModelAdapter` over a digits ``UNet2DModel``: one digit per slot, ``slots`` per prompt.

    With one slot the UNet's own class embedding takes the digit; with more, ``slot_embedding``
    turns the digits into the UNet's class-embedding vector.
    """

    process = Process("vp")

    def __init__(self, unet: Any, table: TimestepTable, slot_embedding: Any | None = None) -> None:
        self.unet = unet
        self.table = table
        self.slot_embedding = slot_embedding
        self.slots = 1 if slot_embedding is None else int(slot_embedding.config.slots)
        self.classes = len(CLASSES)
        self.dtype = unet.dtype
        self.device = unet.device

    def perturbed(self, perturbation: Perturbation) -> AbstractContextManager[None]:
        """The UNet with diffusers' PAG/SEG/SLG hooks on its one self-attention, in the mid
        block (`zsampling.core.perturbation.Perturbable`)."""
        return perturbed_network(self.unet, UNET_STACK, perturbation, "digits")

    def latent_shape(self) -> tuple[int, ...]:
        cfg = self.unet.config
        size = cfg.sample_size
        h, w = (size, size) if isinstance(size, int) else size
        return (int(cfg.in_channels), int(h), int(w))

    def sigma_range(self) -> tuple[float, float]:
        sig = self.table.sigmas
        return float(sig[0]), float(sig[-1])

    def labels(self, prompt: str, field: str = "prompt") -> list[int]:
        """The digits a prompt asks for, one per slot (``"3 7"``, ``"three seven"``)."""
        parts = prompt.split()
        digits = [class_index(p) for p in parts]
        if len(parts) != self.slots or any(d is None for d in digits):
            digit = f"{', '.join(CLASSES)} (or {NAMES[0]}, ..., {NAMES[-1]})"
            valid = (
                f"a digit: {digit}"
                if self.slots == 1
                else f"{self.slots} digits separated by spaces, each one of {digit}, e.g. "
                + repr(" ".join(CLASSES[k] for k in (3, 7, 1)[: self.slots]))
            )
            raise InvalidArgument(field, prompt, valid)
        return [int(d) for d in digits if d is not None]

    def label(self, prompt: str, field: str = "prompt") -> int:
        """The digit of a one-slot prompt (the ``digits`` model's prompts)."""
        return self.labels(prompt, field)[0]

    def encode(
        self, prompts: Sequence[str], negative_prompts: Sequence[str] | None = None
    ) -> tuple[Conditioning, Conditioning]:
        cond = torch.tensor([self.labels(p) for p in prompts], device=self.device)
        negatives = negative_prompts or [""] * len(prompts)
        uncond = torch.tensor(
            [
                [NULL_CLASS] * self.slots if not n else self.labels(n, "negative_prompt")
                for n in negatives
            ],
            device=self.device,
        )
        return {"labels": cond}, {"labels": uncond}

    @torch.no_grad()
    def predict(self, x: Tensor, sigma: Tensor, cond: Conditioning) -> Prediction:
        t = self.table.timestep(sigma).to(device=self.device, dtype=torch.float32)
        labels = cond["labels"]
        if self.slot_embedding is None:
            class_labels = labels[:, 0]
        else:
            class_labels = self.slot_embedding(labels).to(self.dtype)
        eps = self.unet(x.to(self.dtype), t, class_labels=class_labels).sample
        alpha, s = self.process.coefficients(sigma)
        a = alpha.view(-1, 1, 1, 1).to(x.device)
        n = s.view(-1, 1, 1, 1).to(x.device)
        x0 = (x.to(torch.float64) - n * eps.to(torch.float64)) / a
        return Prediction(x0.to(x.dtype), eps.to(x.dtype))

    def decode(self, x: Tensor) -> list[Any]:
        """Grayscale PIL images (pixel = (x + 1) / 2 * 255, clipped)."""
        from PIL import Image

        pixels = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return [Image.fromarray(p[0].numpy(), mode="L") for p in pixels]


FOLDER = "a folder holding unet/ (UNet2DModel, safetensors) and scheduler/ saved by diffusers"


def layout_problem(path: Path) -> str | None:
    """What a digits folder lacks, by looking at its entries only (no file is read)."""
    if not path.is_dir():
        return f"{FOLDER}; there is no folder there"
    missing = [f"{name}/" for name in ("unet", "scheduler") if not (path / name).is_dir()]
    return f"{FOLDER}; it has no {' and no '.join(missing)}" if missing else None


def load_digits_model(path: Path, device: str = "cpu") -> DigitsModel:
    """Load a digits folder with diffusers' ``from_pretrained`` (safetensors only)."""
    from diffusers import DDIMScheduler, UNet2DModel

    from zsampling.digits.slots import SlotEmbedding

    valid = FOLDER
    if layout_problem(path):
        raise InvalidArgument("model.path", str(path), valid)
    target = usable_device("model.device", device)
    with loading("model.path", str(path), valid):
        unet = UNet2DModel.from_pretrained(path / "unet", use_safetensors=True).to(target).eval()
        sched = DDIMScheduler.from_pretrained(path / "scheduler")
        slots = None
        if (path / "slots").is_dir():
            slots = SlotEmbedding.from_pretrained(path / "slots", use_safetensors=True)
            slots = slots.to(target).eval()
    problem = _shape_problem(unet.config)
    if problem:
        raise InvalidArgument("model.path", str(path), f"{valid}; unet/config.json {problem}")
    if slots is None and unet.config.num_class_embeds is None:
        raise InvalidArgument("model.path", str(path), "a class-conditional UNet2DModel")
    table = TimestepTable(
        sched.alphas_cumprod, int(sched.config.steps_offset), bool(sched.config.set_alpha_to_one)
    )
    return DigitsModel(unet, table, slots)


def _shape_problem(config: Any) -> str | None:
    """Why the UNet config cannot give a latent shape, or None: diffusers loads a config whose
    ``sample_size`` is a list of three without complaint, and sampling would fail far from it."""
    size, channels = config.sample_size, config.in_channels
    sizes = [size] if isinstance(size, int) else size
    pair = isinstance(size, int) or (isinstance(size, (list, tuple)) and len(size) == 2)
    if not pair or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in sizes):
        return f"has sample_size = {size!r}; expected a positive integer or a pair [height, width]"
    if not isinstance(channels, int) or isinstance(channels, bool) or channels <= 0:
        return f"has in_channels = {channels!r}; expected a positive integer"
    return None


class DigitsAdapter(Component):
    """The embedded class-conditional digits model (or any folder trained like it)."""

    name: ClassVar[str] = "digits"
    packaged: ClassVar[Path] = PACKAGED

    path: str | None = Field(None, description="Model folder; default: the one zsampling ships.")
    weak: bool = Field(
        False, description="Load the folder's weak/ model (an early checkpoint, for W2SD)."
    )
    device: str = Field("cpu", description="torch device.")

    def folder(self) -> Path:
        base = Path(self.path) if self.path else self.packaged
        return base / "weak" if self.weak else base

    def load(self) -> DigitsModel:
        return load_digits_model(self.folder(), self.device)

    def folder_problem(self) -> str | None:
        """The folder's layout, looked at before a run whose config has errors (see
        `zsampling.runs.preload`)."""
        return layout_problem(self.folder())


class DigitPairsAdapter(DigitsAdapter):
    """The embedded digit-pairs model: two digits side by side (``"3 7"``), the hard prompts."""

    name: ClassVar[str] = "digit-pairs"
    packaged: ClassVar[Path] = PACKAGED_PAIRS
