"""zsampling's schedules, named through the k-diffusion integration, against k-diffusion's own
``get_sigmas_*`` functions and its discrete denoisers' ``get_sigmas``.

The denoisers are k-diffusion's ``DiscreteEpsDDPMDenoiser`` and ``DiscreteVDDPMDenoiser`` over
Stable Diffusion's training table (no network is called: a schedule reads the table only). Runs
only where k-diffusion is installed (``.ci/run-kdiffusion``).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor, nn

K = pytest.importorskip("k_diffusion")

from k_diffusion.external import DiscreteEpsDDPMDenoiser, DiscreteVDDPMDenoiser  # noqa: E402
from k_diffusion.sampling import (  # noqa: E402
    get_sigmas_exponential,
    get_sigmas_karras,
    get_sigmas_polyexponential,
)

from zsampling.core.errors import InvalidArgument  # noqa: E402
from zsampling.core.levels import scaled_linear_alphas_cumprod  # noqa: E402
from zsampling.integrations.kdiffusion import get_sigmas  # noqa: E402

STEPS = (5, 10, 25, 50)
TOLERANCE = 1e-5  # k-diffusion computes in float32


def denoisers() -> list[Any]:
    alphas = scaled_linear_alphas_cumprod()
    return [
        DiscreteEpsDDPMDenoiser(nn.Identity(), alphas, quantize=True),
        DiscreteVDDPMDenoiser(nn.Identity(), alphas, quantize=True),
    ]


def worst(ours: Tensor, ref: Tensor) -> float:
    """Largest element-wise relative difference (zeros must match exactly)."""
    ours, ref = ours.double(), ref.double()
    assert ours.shape == ref.shape and ours.dtype == torch.float64
    zero = ref == 0
    assert bool((ours[zero] == 0).all())
    return float(((ours[~zero] - ref[~zero]).abs() / ref[~zero]).max())


@pytest.mark.parametrize("denoiser", denoisers(), ids=["eps", "v"])
def test_named_schedules_equal_k_diffusions_functions(denoiser: Any) -> None:
    lo, hi = float(denoiser.sigma_min), float(denoiser.sigma_max)
    for steps in STEPS:
        cases = [
            (get_sigmas("exponential", denoiser, steps), get_sigmas_exponential(steps, lo, hi)),
            (get_sigmas("karras", denoiser, steps), get_sigmas_karras(steps, lo, hi)),
            (get_sigmas("karras", denoiser, steps, rho=3.0), get_sigmas_karras(steps, lo, hi, 3.0)),
            (
                get_sigmas("polyexponential", denoiser, steps, rho=2.0),
                get_sigmas_polyexponential(steps, lo, hi, 2.0),
            ),
            # k-diffusion's own discrete schedule is ComfyUI's "normal"
            (get_sigmas("normal", denoiser, steps), denoiser.get_sigmas(steps)),
        ]
        for ours, ref in cases:
            assert ours.dtype == torch.float32
            assert worst(ours, ref) <= TOLERANCE, steps


def test_bad_names_and_settings_are_refused_by_name() -> None:
    denoiser = denoisers()[0]
    with pytest.raises(InvalidArgument, match=r"a registered schedule: .*kl-optimal"):
        get_sigmas("kl_optimal_typo", denoiser, 10)
    with pytest.raises(InvalidArgument, match=r"polyexponential\.rho"):
        get_sigmas("polyexponential", denoiser, 10, rho=-1.0)
