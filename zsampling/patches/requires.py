"""What every diffusers patch checks first."""

from __future__ import annotations

from zsampling.adapters.diffusers import DiffusersModel
from zsampling.core.errors import InvalidArgument
from zsampling.core.model import ModelAdapter


def require_diffusers(model: ModelAdapter, patch: str) -> DiffusersModel:
    """The model as a `DiffusersModel`, or a clear error naming the patch."""
    if not isinstance(model, DiffusersModel):
        raise InvalidArgument(
            f"patches.{patch}",
            type(model).__name__,
            "a model loaded by the 'diffusers' adapter (list this patch before patches that wrap "
            "the model, such as dynamic thresholding)",
        )
    return model
