"""Restart, W2SD and a third-party sampler written against the protocol alone."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from pydantic import BaseModel

from zsampling import (
    W2SD,
    InvalidArgument,
    ReflectiveSampler,
    Restart,
    SamplingPath,
    Standard,
    TrajectoryRecorder,
    Uniform,
    Zigzag,
    sample,
)
from zsampling.adapters.analytic import AnalyticModel, GaussianMixture, demo_mixture


def test_restart_path_and_reproducibility(analytic: AnalyticModel) -> None:
    rec = TrajectoryRecorder()
    restart = Restart(guidance=2.0, restart_min=0.5, restart_max=2.0, rounds=2)
    kw = dict(prompts=["red", "blue"], seeds=[3, 4], schedule=Uniform(steps=20))
    a = sample(analytic, restart, observers=[rec], **kw)  # type: ignore[arg-type]
    sig = [e.sigma_src for e in rec.events if e.kind == "denoise"]
    high, low = restart.interval(Uniform(steps=20).sigmas(analytic).tolist())
    renoise = [e for e in rec.events if e.kind == "renoise"]
    assert [(e.src, e.dst) for e in renoise] == [(low, high)] * 2
    assert len(sig) == 20 + 2 * (low - high)
    b = sample(analytic, restart, **kw)  # type: ignore[arg-type]
    assert torch.equal(a.latents, b.latents)  # same seeds, same restart noise
    none = sample(analytic, Restart(guidance=2.0, rounds=0), **kw)  # type: ignore[arg-type]
    std = sample(analytic, Standard(guidance=2.0), **kw)  # type: ignore[arg-type]
    assert torch.equal(none.latents, std.latents)


def test_renoise_gives_the_exact_forward_marginal(analytic: AnalyticModel) -> None:
    """Exact samples at a low level, renoised, are exact samples at the high level."""
    sig = Uniform(steps=10).sigmas(analytic)
    n, mix = 40000, analytic.mixture
    x = mix.sample(n, torch.Generator().manual_seed(0), sigma=float(sig[7]))
    path = SamplingPath(
        sig,
        analytic.process,
        {"main": None},
        None,  # type: ignore[dict-item,arg-type]
        generators=[torch.Generator().manual_seed(1)],
    )
    up = path.renoise(x.unsqueeze(0).float(), 7, 2).squeeze(0).double()
    ref = mix.sample(n, torch.Generator().manual_seed(2), sigma=float(sig[2]))
    torch.testing.assert_close(up.mean(0), ref.mean(0), rtol=0, atol=0.02)
    torch.testing.assert_close(up.T.cov(), ref.T.cov(), rtol=0, atol=0.03)


def test_restart_bad_interval(analytic: AnalyticModel) -> None:
    with pytest.raises(ValueError, match="restart_max"):
        Restart(restart_min=2.0, restart_max=1.0)
    with pytest.raises(InvalidArgument, match=r"sampler\.restart_min = 1e-05"):
        sample(analytic, Restart(restart_min=1e-5), prompts=["red"], schedule=Uniform(steps=5))


def blurred_model() -> AnalyticModel:
    """A 'weak' model: the same classes with wider components (an underfit model)."""
    mix = demo_mixture()
    return AnalyticModel(
        GaussianMixture(mix.means, mix.variances * 2.0, mix.weights, mix.labels, mix.class_names)
    )


def test_w2sd_with_the_same_model_is_zigzag(analytic: AnalyticModel, noise64) -> None:  # type: ignore[no-untyped-def]
    kw = dict(prompts=["red", "green", "blue"] * 2, noise=noise64, schedule=Uniform(steps=8))
    w2sd = sample(
        analytic,
        W2SD(guidance=3.0, weak_guidance=0.0, inversion="target"),  # both with the same zag
        extra_models={"weak": analytic},
        **kw,
    )  # type: ignore[arg-type]
    zig = sample(analytic, Zigzag(guidance=3.0, inversion_guidance=0.0, inversion="target"), **kw)  # type: ignore[arg-type]
    torch.testing.assert_close(w2sd.latents, zig.latents, rtol=0, atol=1e-12)


def test_w2sd_inverts_with_the_weak_model(analytic: AnalyticModel, noise64) -> None:  # type: ignore[no-untyped-def]
    rec = TrajectoryRecorder()
    kw = dict(prompts=["red"] * 6, noise=noise64, schedule=Uniform(steps=6))
    out = sample(
        analytic, W2SD(guidance=3.0), extra_models={"weak": blurred_model()}, observers=[rec], **kw
    )  # type: ignore[arg-type]
    assert {e.model for e in rec.events if e.kind == "invert"} == {"weak"}
    assert {e.model for e in rec.events if e.kind == "denoise"} == {"main"}
    same = sample(analytic, W2SD(guidance=3.0), extra_models={"weak": analytic}, **kw)  # type: ignore[arg-type]
    assert (out.latents - same.latents).abs().max() > 1e-3
    with pytest.raises(InvalidArgument, match=r"sampler\.weak_model = 'weak'.*configured: none"):
        sample(analytic, W2SD(), **kw)  # type: ignore[arg-type]


class PingPong(BaseModel):
    """A third-party sampler: only the protocol (name + sample) and the path it is given."""

    name: ClassVar[str] = "ping-pong"
    guidance: float = 2.0

    def sample(self, x: torch.Tensor, path: SamplingPath) -> torch.Tensor:
        for i in range(path.steps):
            x = path.denoise(x, i, self.guidance)
            if i + 1 < path.steps:  # peek one level further, come back, keep going
                x = path.invert(path.denoise(x, i + 1, self.guidance), i + 1, 1.0, "source")
        return x


def test_third_party_sampler_fits_the_protocol(analytic: AnalyticModel) -> None:
    sampler = PingPong()
    assert isinstance(sampler, ReflectiveSampler)
    rec = TrajectoryRecorder()
    out = sample(
        analytic, sampler, prompts=["green"], seeds=[0], schedule=Uniform(steps=5), observers=[rec]
    )
    assert rec.kinds[:4] == ["denoise", "denoise", "invert", "denoise"]
    assert out.latents.shape == (1, 2)
    assert torch.isfinite(out.latents).all()
