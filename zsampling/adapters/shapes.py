"""The embedded shapes model: a tiny Stable Diffusion pipeline trained on the shapes world.

It is an ordinary ``StableDiffusionPipeline`` folder (`zsampling.shapes.pipeline`), so it loads
with diffusers' ``from_pretrained`` and runs through the same `DiffusersModel` as SD 1.5; this
component only knows where it ships and where its weak UNet (``weak/unet``, an early checkpoint of
the same training, for W2SD and AutoGuidance) lies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from zsampling.adapters.diffusers import DiffusersModel
from zsampling.adapters.folders import load_pipeline_folder, loading
from zsampling.core.component import Component

PACKAGED = Path(__file__).resolve().parents[1] / "models" / "shapes"
FOLDER = "a shapes pipeline folder (model_index.json, unet/, vae/, ... and weak/unet/)"


def load_shapes_pipeline(path: Path = PACKAGED, weak: bool = False, device: str = "cpu") -> Any:
    """The pipeline in ``path`` (float32), with its weak UNet in place of the UNet if ``weak``."""
    pipe = load_pipeline_folder(str(path), ("StableDiffusionPipeline",), "float32", device)
    if not weak:
        return pipe
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    with loading("model.path", str(path), FOLDER):
        unet = UNet2DConditionModel.from_pretrained(path / "weak" / "unet", use_safetensors=True)
    parts = {**pipe.components, "unet": unet.to(pipe.device).eval()}
    weak_pipe: Any = StableDiffusionPipeline(**parts, requires_safety_checker=False)
    weak_pipe.set_progress_bar_config(disable=True)
    return weak_pipe


class ShapesAdapter(Component):
    """The embedded shapes text-to-image model (docs/shapes.md), or a folder trained like it."""

    name: ClassVar[str] = "shapes"

    path: str | None = Field(None, description="Model folder; default: the one zsampling ships.")
    weak: bool = Field(
        False, description="Use the folder's weak/unet (an early checkpoint, for W2SD)."
    )
    device: str = Field("cpu", description="torch device.")

    def folder(self) -> Path:
        return Path(self.path).expanduser() if self.path else PACKAGED

    def load(self) -> DiffusersModel:
        return DiffusersModel(load_shapes_pipeline(self.folder(), self.weak, self.device))

    def folder_problem(self) -> str | None:
        """The folder's layout, looked at before a run whose config has errors (no file read)."""
        folder = self.folder()
        needed = ["model_index.json", *(["weak/unet"] if self.weak else [])]
        missing = [n for n in needed if not (folder / n).exists()]
        return f"{FOLDER}; it has no {' and no '.join(missing)}" if missing else None
