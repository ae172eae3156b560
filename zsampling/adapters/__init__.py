"""Model adapters: any model family answered in one representation of levels."""

from zsampling.adapters.base import Conditioning, ModelAdapter

__all__ = ["Conditioning", "ModelAdapter"]
