"""The zig-zag-zig loop shared by Z-Sampling and W2SD."""

from __future__ import annotations

from torch import Tensor

from zsampling.core.path import InversionPoint, SamplingPath


def reflect(
    x: Tensor,
    path: SamplingPath,
    *,
    guidance: float,
    inversion_guidance: float,
    reflection_steps: int,
    rounds: int,
    evaluate_at: InversionPoint,
    inversion_model: str,
    inversion_conditioning: str = "cond",
) -> Tensor:
    """Denoise every step; on the first ``reflection_steps`` steps invert and denoise again.

    This is Algorithm 1 of the Z-Sampling paper, with the inverting model and the zag's
    conditioning made parameters (W2SD inverts with a weaker model; Z-Sampling with the same
    model at a weaker guidance; Asymmetry Zigzag with another prompt)::

        for i in 0 .. T-1:
            x_next = denoise(x, i, guidance)
            if i < reflection_steps:
                repeat rounds times:
                    x      = invert(x_next, i, inversion_guidance)
                    x_next = denoise(x, i, guidance)
            x = x_next
    """
    for i in range(path.steps):
        x_next = path.denoise(x, i, guidance)
        if i < reflection_steps:
            for _ in range(rounds):
                x = path.invert(
                    x_next,
                    i,
                    inversion_guidance,
                    evaluate_at=evaluate_at,
                    model=inversion_model,
                    conditioning=inversion_conditioning,
                )
                x_next = path.denoise(x, i, guidance)
        x = x_next
    return x
