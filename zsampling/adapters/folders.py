"""Pipeline folders: the settings and the checked loading every diffusers-folder adapter shares.

The ``diffusers``, ``sd3`` and ``k-diffusion`` adapters all load a local folder written by a
pipeline's ``save_pretrained`` (``model_index.json`` plus one folder per component), in a dtype, on
a device, at an image size. `PipelineFolder` holds those settings once; `load_pipeline_folder`
checks the folder and loads it with ``from_pretrained`` (safetensors only), turning every failure a
user can cause into an `InvalidArgument` naming the setting.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field

from zsampling.core.component import Component
from zsampling.core.devices import device_problem
from zsampling.core.errors import InvalidArgument, one_line

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

    def folder_problem(self) -> str | None:
        """The folder's layout, looked at before a run whose config has errors (see
        `zsampling.runs.preload`): no file is read."""
        folder = Path(self.path).expanduser()
        if not folder.is_dir():
            return "an existing local pipeline folder; there is no folder there"
        if not (folder / "model_index.json").is_file():
            return "a diffusers pipeline folder; it has no model_index.json"
        return None


#: Where a pipeline's components may come from. ``model_index.json`` names a library and a class
#: per component; any other library is a module diffusers would import (custom code), so it is
#: refused before loading: a model folder is data, and data runs no code.
LIBRARIES = ("diffusers", "transformers")


@contextmanager
def loading(field: str, path: str, valid: str) -> Iterator[None]:
    """A damaged folder as an `InvalidArgument` naming ``field``, whatever the loader raised.

    ``from_pretrained`` fails in many ways on a damaged folder: OSError (missing files),
    ValueError and JSONDecodeError (a bad config), SafetensorError (a truncated file), KeyError,
    TypeError or RuntimeError (a config that does not fit the weights). Running out of memory is
    not a property of the folder and passes through.
    """
    try:
        yield
    except (InvalidArgument, MemoryError, torch.OutOfMemoryError):
        raise
    except Exception as exc:
        raise InvalidArgument(field, path, f"{valid} (loading failed: {one_line(exc)})") from None


def usable_device(field: str, device: str) -> torch.device:
    """The torch device ``device`` names, if this machine has it (`InvalidArgument` if not)."""
    problem = device_problem(device)
    if problem:
        raise InvalidArgument(field, device, problem)
    return torch.device(device)


def pipeline_class(path: str, accepted: Sequence[str]) -> str:
    """Check that ``path`` is a local pipeline folder of one of the ``accepted`` classes, whose
    components all come from diffusers or transformers."""
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
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (ValueError, OSError, RecursionError) as err:
        raise InvalidArgument(
            "model.path", path, f"a pipeline folder with a readable model_index.json ({err})"
        ) from None
    kind = data.get("_class_name") if isinstance(data, dict) else None
    if kind not in accepted:
        raise InvalidArgument(
            "model.path", path, f"a folder of a {' or '.join(accepted)} (found {kind!r})"
        )
    for name, value in data.items():
        library = value[0] if isinstance(value, list) and value else None
        if not name.startswith("_") and library is not None and library not in LIBRARIES:
            raise InvalidArgument(
                "model.path",
                path,
                f"a pipeline whose components come from {' or '.join(LIBRARIES)}; its "
                f"model_index.json names {name} = {value!r}, which would run custom code",
            )
    return str(kind)


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def pickle_only_components(folder: Path) -> list[str]:
    """Component folders with pickle weights (``.bin``, ...) and no safetensors weights.

    Checked before loading because ``use_safetensors=True`` is not a guarantee everywhere:
    diffusers 0.30 falls back to loading a component's pickle ``.bin`` weights (which can run
    code) when it has no safetensors file, with only a warning.
    """
    found = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = [f for f in sub.iterdir() if f.is_file()]
        pickled = any(f.suffix in PICKLE_SUFFIXES for f in files)
        if pickled and not any(f.suffix == ".safetensors" for f in files):
            found.append(sub.name)
    return found


def load_pipeline_folder(
    path: str, accepted: Sequence[str], dtype: str, device: str, variant: str | None = None
) -> Any:
    """A checked pipeline folder loaded with ``from_pretrained`` (safetensors only) on ``device``.

    Every failure a user can cause (missing folder, wrong pipeline, missing or pickle-only weights,
    a bad device) is an `InvalidArgument` naming the setting.
    """
    import diffusers

    kind = pipeline_class(path, accepted)
    pickled = pickle_only_components(Path(path).expanduser())
    if pickled:
        raise InvalidArgument(
            "model.path",
            path,
            "a folder with safetensors weights for every component (pickle .bin weights are "
            f"refused: they can run code when loaded); pickle only: {', '.join(pickled)}",
        )
    target = usable_device("model.device", device)
    of_variant = f" of variant {variant!r}" if variant else ""
    valid = (
        f"a folder with safetensors weights{of_variant} for every component "
        "(pickle .bin weights are refused)"
    )
    with loading("model.path", path, valid):
        pipe = getattr(diffusers, kind).from_pretrained(
            str(Path(path).expanduser()),
            torch_dtype=DTYPES[dtype],
            variant=variant,
            use_safetensors=True,
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe if pipe.device == target else pipe.to(target)
