"""Dtype casts for the sampling loop's hot path.

``Tensor.to(dtype)`` parses its overloaded arguments on every call, so on the small latents of
a tiny model it costs more than the cast itself, and even a no-op ``to`` is not free (the
figures are in docs/benchmarks.md, "Dtype casts"). A sampling step casts half a dozen times,
so these helpers call the dtype's own method (``Tensor.double``) and skip a cast to the dtype
a tensor already has.
"""

from __future__ import annotations

import torch
from torch import Tensor

_METHODS = {
    torch.float64: Tensor.double,
    torch.float32: Tensor.float,
    torch.float16: Tensor.half,
    torch.bfloat16: Tensor.bfloat16,
}


def cast(t: Tensor, dtype: torch.dtype) -> Tensor:
    """``t.to(dtype)``: ``t`` itself when it has that dtype already."""
    if t.dtype == dtype:
        return t
    method = _METHODS.get(dtype)
    return method(t) if method is not None else t.to(dtype)


def wide_copy(t: Tensor) -> Tensor:
    """A new float64 tensor equal to ``t`` (safe to change in place)."""
    return t.clone() if t.dtype == torch.float64 else t.double()


HALF = (torch.float16, torch.bfloat16)


def prediction_dtype(latent_dtype: torch.dtype) -> torch.dtype:
    """The dtype an adapter returns a prediction in: the latent's, but float32 for half-precision
    latents. A prediction's ``x0`` is up to ``1 / alpha`` times the latent (about 15x at SD's
    noisiest level); rounded to half precision and then combined by CFG (scale 5: the rounding
    times 5), it put a fp16 run twice as far from the float32 result as diffusers' own fp16
    pipeline. In float32 the run is closer to it than diffusers' (docs/benchmarks.md)."""
    return torch.float32 if latent_dtype in HALF else latent_dtype
