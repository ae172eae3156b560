"""What every diffusers patch checks first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zsampling.errors import InvalidArgument

if TYPE_CHECKING:
    from zsampling.adapters.base import ModelAdapter
    from zsampling.adapters.diffusers import DiffusersModel


def require_diffusers(model: ModelAdapter, patch: str) -> DiffusersModel:
    """The model as a `DiffusersModel`, or a clear error naming the patch."""
    from zsampling.adapters.diffusers import DiffusersModel

    if not isinstance(model, DiffusersModel):
        raise InvalidArgument(
            f"patches.{patch}",
            type(model).__name__,
            "a model loaded by the 'diffusers' adapter (list this patch before patches that wrap "
            "the model, such as dynamic thresholding)",
        )
    return model
