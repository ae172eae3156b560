"""`Prediction`: the pair of an epsilon prediction derives ``x0`` only when it is read."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from zsampling import DPMSolverPP2M, Standard
from zsampling.core.prediction import Prediction, _PendingX0
from zsampling.integrations.diffusers import generate
from zsampling.testing.tiny import tiny_sd_pipeline


def eager_x0(x: torch.Tensor, eps: torch.Tensor, alpha: Any, s: Any) -> torch.Tensor:
    """The formula written out in float64, the reference the pending pair must equal."""
    return (x.double() - s * eps.double()) / alpha


@pytest.fixture
def latents() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(4, 3, 5, 5, generator=g), torch.randn(4, 3, 5, 5, generator=g)


def test_x0_of_a_shared_level_is_the_float64_formula(latents: Any) -> None:
    x, eps = latents
    pair = Prediction.from_eps(x, eps, 0.3, 0.9539392014169456)
    assert pair.eps is eps  # as the network gave it
    assert pair.x0.dtype == torch.float32
    # To a float32 ulp: the kernel may fuse the multiply-subtract before rounding.
    reference = eager_x0(x, eps, 0.3, 0.9539392014169456).float()
    torch.testing.assert_close(pair.x0, reference, rtol=1.2e-7, atol=0)
    assert pair.x0 is pair.x0  # derived once


def test_x0_of_per_row_levels_and_row_blocks(latents: Any) -> None:
    x, eps = latents
    alpha = torch.tensor([0.1, 0.5, 0.7, 0.9], dtype=torch.float64).view(4, 1, 1, 1)
    s = (1 - alpha**2).sqrt()
    pair = Prediction.from_eps(x, eps, alpha, s)
    expected = eager_x0(x, eps, alpha, s).float()
    assert torch.equal(pair.x0, expected)
    # Chunked before x0 is read: each block derives its own rows with its own coefficients.
    blocks = Prediction.from_eps(x, eps, alpha, s).chunk(2)
    assert torch.equal(torch.cat([b.x0 for b in blocks]), expected)
    assert torch.equal(torch.cat([b.eps for b in blocks]), eps)
    # Blocks of blocks: row 3 is block 1 of block 1.
    inner = Prediction.from_eps(x, eps, alpha, s).chunk(2)[1].chunk(2)[1]
    assert torch.equal(inner.x0, expected[3:]) and torch.equal(inner.eps, eps[3:])
    # Chunked after: plain row blocks of the derived halves.
    assert all(torch.equal(a.x0, b.x0) for a, b in zip(pair.chunk(2), blocks, strict=True))


def test_to_keeps_x0_pending_and_derives_it_in_the_new_dtype(latents: Any) -> None:
    x, eps = latents
    wide = Prediction.from_eps(x, eps, 0.3, 0.95).to(torch.float64)
    assert wide.eps.dtype == wide.x0.dtype == torch.float64
    # Not the float32 x0 widened: the float64 derivation itself (to an ulp: the kernel may fuse
    # the multiply-subtract), ~1e-7 away from the float32 one.
    reference = eager_x0(x, eps, 0.3, 0.95)
    torch.testing.assert_close(wide.x0, reference, rtol=1e-14, atol=0)
    assert float((wide.x0 - reference.float().double()).abs().max()) > 1e-7


def test_a_prediction_is_read_only(latents: Any) -> None:
    x, eps = latents
    for pair in (Prediction(x, eps), Prediction.from_eps(x, eps, 0.3, 0.95)):
        with pytest.raises(AttributeError, match="read-only"):
            pair.x0 = eps  # type: ignore[misc]
        with pytest.raises(AttributeError, match="read-only"):
            pair.eps = x  # type: ignore[misc]


def test_sampling_derives_an_x0_only_where_a_step_needs_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The point of the pending x0: on a diffusers epsilon model, CFG combines eps, so no
    branch's x0 is computed, and a first-order step moves x with eps directly (`step_to`), so
    neither is the guided pair's (or, at scale 1, the one branch's): five kernels per call over
    both branches' rows, on the sampling loop's hot path. A multistep solver extrapolates x0, so
    there each step's guided x0 is derived once, for its history."""
    derived: list[tuple[int, ...]] = []
    own = _PendingX0.x0

    def counting(self: _PendingX0) -> torch.Tensor:
        derived.append(tuple(self.x.shape))
        return own(self)

    monkeypatch.setattr(_PendingX0, "x0", counting)
    pipe = tiny_sd_pipeline()
    pipe.set_progress_bar_config(disable=True)
    for guidance in (5.0, 1.0):
        generate(pipe, "a cat", sampler=Standard(guidance=guidance), steps=4, output_type="latent")
    assert derived == []
    generate(
        pipe,
        "a cat",
        sampler=Standard(guidance=5.0),
        steps=4,
        solver=DPMSolverPP2M(),
        output_type="latent",
    )
    # Once per step: step k > 0 reads its own x0 and step k - 1's (its history, already derived
    # then); step 0's is read as step 1's history. SD's last level is above 0, so the last step
    # is second order too.
    assert derived == [(1, 4, 16, 16)] * 4


def test_step_to_equals_the_step_from_the_derived_pair(latents: Any) -> None:
    x, eps = latents
    for dtype in (torch.float32, torch.float64):
        e = eps.to(dtype)
        pending = Prediction.from_eps(x, e, 0.3, 0.95)
        eager = Prediction(pending.x0 if dtype == torch.float64 else eager_x0(x, e, 0.3, 0.95), e)
        fused = Prediction.from_eps(x, e, 0.3, 0.95).step_to(0.5, 0.8)
        assert fused.dtype == torch.float64
        torch.testing.assert_close(fused, eager.step_to(0.5, 0.8), rtol=1e-13, atol=1e-13)
    # Row blocks step with their own rows of x.
    upper = Prediction.from_eps(x, eps, 0.3, 0.95).chunk(2)[1]
    torch.testing.assert_close(
        upper.step_to(0.5, 0.8),
        Prediction(upper.x0, upper.eps).step_to(0.5, 0.8),
        rtol=1e-6,
        atol=1e-6,
    )
