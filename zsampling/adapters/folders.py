"""Pipeline folders: the settings and the checked loading every diffusers-folder adapter shares.

The ``diffusers``, ``sd3`` and ``k-diffusion`` adapters all load a local folder written by a
pipeline's ``save_pretrained`` (``model_index.json`` plus one folder per component), in a dtype, on
a device, at an image size. `PipelineFolder` holds those settings once; `load_pipeline_folder`
checks the folder and loads it with ``from_pretrained`` (safetensors only), turning every failure a
user can cause into an `InvalidArgument` naming the setting.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field

from zsampling.core.component import Component
from zsampling.core.errors import InvalidArgument

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


class PipelineFolder(Component):
    """Settings of an adapter that loads a local pipeline folder (subclasses add their own)."""

    path: str = Field(description="Local pipeline folder (with model_index.json).")
    dtype: Literal["float32", "float16", "bfloat16"] = Field(
        "float32", description="Weights dtype (an fp16 SDXL VAE still decodes in float32)."
    )
    device: str = Field("cpu", description="Torch device, e.g. 'cpu', 'cuda', 'cuda:1'.")
    height: int | None = Field(None, gt=0, description="Image height; default: the model's.")
    width: int | None = Field(None, gt=0, description="Image width; default: the model's.")


def pipeline_class(path: str, accepted: Sequence[str]) -> str:
    """Check that ``path`` is a local pipeline folder of one of the ``accepted`` classes."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise InvalidArgument("model.path", path, "an existing local pipeline folder")
    index = folder / "model_index.json"
    if not index.is_file():
        raise InvalidArgument(
            "model.path",
            path,
            "a diffusers pipeline folder (model_index.json is missing; a folder with only a "
            "UNet belongs in the 'unet-weights' patch)",
        )
    kind = json.loads(index.read_text(encoding="utf-8")).get("_class_name")
    if kind not in accepted:
        raise InvalidArgument(
            "model.path", path, f"a folder of a {' or '.join(accepted)} (found {kind})"
        )
    return str(kind)


def load_pipeline_folder(
    path: str, accepted: Sequence[str], dtype: str, device: str, variant: str | None = None
) -> Any:
    """A checked pipeline folder loaded with ``from_pretrained`` (safetensors only) on ``device``.

    Every failure a user can cause (missing folder, wrong pipeline, missing or pickle-only weights,
    a bad device) is an `InvalidArgument` naming the setting.
    """
    import diffusers

    kind = pipeline_class(path, accepted)
    try:
        target = torch.device(device)
    except (RuntimeError, ValueError):
        raise InvalidArgument("model.device", device, "a torch device") from None
    try:
        pipe = getattr(diffusers, kind).from_pretrained(
            str(Path(path).expanduser()),
            torch_dtype=DTYPES[dtype],
            variant=variant,
            use_safetensors=True,
        )
    except OSError as err:  # diffusers' EnvironmentError for missing weight files
        of_variant = f" of variant {variant!r}" if variant else ""
        raise InvalidArgument(
            "model.path",
            path,
            f"a folder with safetensors weights{of_variant} for every component "
            f"(pickle .bin weights are refused): {err}",
        ) from None
    pipe.set_progress_bar_config(disable=True)
    return pipe if pipe.device == target else pipe.to(target)
