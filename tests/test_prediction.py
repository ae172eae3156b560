"""`Prediction`: the pair of an epsilon prediction derives ``x0`` only when it is read."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from zsampling import Standard
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


def test_cfg_sampling_never_derives_the_branches_x0(monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of the pending x0: on a diffusers epsilon model, CFG combines eps and derives
    the guided x0 from x itself, so no branch's x0 is ever computed (four kernels per call over
    both branches' rows, on the sampling loop's hot path). At scale 1 the one branch's pair is
    the step's, so its x0 is derived then, once per step."""
    derived: list[tuple[int, ...]] = []
    own = _PendingX0.x0

    def counting(self: _PendingX0) -> torch.Tensor:
        derived.append(tuple(self.x.shape))
        return own(self)

    monkeypatch.setattr(_PendingX0, "x0", counting)
    pipe = tiny_sd_pipeline()
    pipe.set_progress_bar_config(disable=True)
    generate(pipe, "a cat", sampler=Standard(guidance=5.0), steps=4, output_type="latent")
    assert derived == []
    generate(pipe, "a cat", sampler=Standard(guidance=1.0), steps=4, output_type="latent")
    assert len(derived) == 4 and all(shape[0] == 1 for shape in derived)
