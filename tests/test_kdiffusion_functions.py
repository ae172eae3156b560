"""The k-diffusion-style sampler functions and adapter without k-diffusion installed.

The analytic mixture, written as a k-diffusion denoiser (VE latent in, exact ``x0`` out), is the
model: k-diffusion's Euler update restated here is the reference, and the VP analytic adapter gives
an independent second route to the same final latents (a DDIM step is the same in VE and VP space
when the model is evaluated where the latent sits).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from zsampling import Euler, Karras, Standard, Zigzag, sample
from zsampling.adapters.analytic import NULL_CLASS, AnalyticModel, demo_mixture
from zsampling.adapters.kdiffusion import KDiffusionAdapter, KDiffusionModel
from zsampling.core.errors import InvalidArgument
from zsampling.core.levels import Process
from zsampling.integrations.kdiffusion import sample_standard, sample_zigzag
from zsampling.solvers.dpm2 import DPM2
from zsampling.solvers.heun import Heun
from zsampling.solvers.lms import LMS
from zsampling.solvers.unipc import UniPC

LABELS = torch.tensor([0, 1, 2, 1])
NULL = torch.full_like(LABELS, NULL_CLASS)
G = 3.0


class AnalyticDenoiser(nn.Module):
    """``D(x_ve, sigma, label) -> x0``: the exact posterior mean, k-diffusion style."""

    def __init__(self, calls: list[dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.model = AnalyticModel(demo_mixture())
        self.calls = calls

    def forward(self, x: Tensor, sigma: Tensor, label: Tensor, **extra: Any) -> Tensor:
        if self.calls is not None:
            self.calls.append({"rows": x.shape[0], **extra})
        alpha = Process("vp").coefficients(sigma.to(torch.float64))[0].view(-1, 1)
        return self.model.predict(x * alpha, sigma.to(torch.float64), {"label": label}).x0


class CFGDenoiser(nn.Module):
    """A denoiser that does CFG itself, reading the scale from its arguments (A1111's way)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(
        self, x: Tensor, sigma: Tensor, uncond: Tensor, cond: Tensor, cond_scale: float
    ) -> Tensor:
        both = self.inner(torch.cat([x, x]), torch.cat([sigma, sigma]), torch.cat([uncond, cond]))
        u, c = both.chunk(2)
        return u + (c - u) * cond_scale


def k_euler(model: Any, x: Tensor, sigmas: Tensor, extra_args: dict[str, Any]) -> Tensor:
    """k-diffusion's ``sample_euler`` update without churn, restated."""
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        x = x + (x - denoised) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
    return x


@pytest.fixture
def setup() -> tuple[AnalyticDenoiser, Tensor, Tensor]:
    denoiser = AnalyticDenoiser()
    sigmas = Karras(steps=12, sigma_min=0.03, sigma_max=14.6).sigmas(AnalyticModel(demo_mixture()))
    noise = torch.randn(4, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    return denoiser, sigmas, noise


def split_args() -> dict[str, Any]:
    return {"cond": LABELS, "uncond": NULL, "cond_scale": G}


def test_sample_standard_is_k_diffusion_euler_with_cfg(
    setup: tuple[AnalyticDenoiser, Tensor, Tensor],
) -> None:
    denoiser, sigmas, noise = setup
    x = noise * sigmas[0]
    ref = k_euler(
        CFGDenoiser(denoiser), x, sigmas, {"uncond": NULL, "cond": LABELS, "cond_scale": G}
    )
    ours = sample_standard(denoiser, x, sigmas, split_args(), disable=True, cond_arg="label")
    assert float((ours - ref).abs().max()) <= 1e-10
    # the same latents by the VP analytic adapter: the VE arithmetic is right
    vp = sample(
        AnalyticModel(demo_mixture()),
        Standard(guidance=G),
        conditioning=({"label": LABELS}, {"label": NULL}),
        noise=noise,
        sigmas=sigmas,
        solver=Euler(),
        noise_scale=float(Process("vp").coefficients(sigmas[:1])[1]),
    ).latents
    assert float((ours - vp).abs().max()) <= 1e-10


@pytest.mark.parametrize("inversion", ["source", "target", "official"])
def test_sample_zigzag_equals_core_zigzag(
    setup: tuple[AnalyticDenoiser, Tensor, Tensor], inversion: Any
) -> None:
    denoiser, sigmas, noise = setup
    zz = Zigzag(guidance=G, inversion_guidance=0.5, zigzag_steps=7, inversion=inversion)
    core = sample(
        KDiffusionModel(denoiser, (2,)),
        zz,
        conditioning=({"label": LABELS}, {"label": NULL}),
        noise=noise,
        sigmas=sigmas,
    ).latents
    opts: dict[str, Any] = dict(inversion_guidance=0.5, zigzag_steps=7, inversion=inversion)
    x = noise * sigmas[0]
    ours = sample_zigzag(denoiser, x, sigmas, split_args(), disable=True, cond_arg="label", **opts)
    assert float((ours - core).abs().max()) <= 1e-12
    via_model = sample_zigzag(
        CFGDenoiser(denoiser),
        x,
        sigmas,
        {"uncond": NULL, "cond": LABELS, "cond_scale": G},
        disable=True,
        cfg="model",
        **opts,
    )
    assert float((via_model - core).abs().max()) <= 1e-10
    plain = sample_standard(denoiser, x, sigmas, split_args(), disable=True, cond_arg="label")
    assert float((ours - plain).abs().max()) > 1e-3
    if inversion == "source":  # model evaluated where the latent sits: VE = VP
        vp = sample(
            AnalyticModel(demo_mixture()),
            zz,
            conditioning=({"label": LABELS}, {"label": NULL}),
            noise=noise,
            sigmas=sigmas,
            noise_scale=float(Process("vp").coefficients(sigmas[:1])[1]),
        ).latents
        assert float((ours - vp).abs().max()) <= 1e-10


def test_callback_gets_k_diffusions_dict(setup: tuple[AnalyticDenoiser, Tensor, Tensor]) -> None:
    denoiser, sigmas, noise = setup
    x = noise * sigmas[0]
    seen: list[dict[str, Any]] = []
    out = sample_zigzag(
        denoiser, x, sigmas, split_args(), seen.append, True, cond_arg="label", zigzag_steps=2
    )
    assert all(set(c) == {"x", "i", "sigma", "sigma_hat", "denoised"} for c in seen)
    # each zigzag step reports its first denoise and its re-denoise
    assert [c["i"] for c in seen] == [0, 0, 1, 1, *range(2, 12)]
    assert torch.equal(seen[0]["x"], x)
    for c in seen:
        assert float(c["sigma"]) == pytest.approx(float(sigmas[c["i"]]))
        assert torch.equal(c["sigma"], c["sigma_hat"])
    # the last callback's denoised is what the final Euler step lands on (sigma_T = 0)
    assert torch.allclose(seen[-1]["denoised"], out, atol=1e-12)


def test_shared_extra_args_and_branch_skipping(
    setup: tuple[AnalyticDenoiser, Tensor, Tensor],
) -> None:
    """Batch-shaped tensors are batched with the branches; other values go to every call as they
    are; scale 0 and 1 evaluate one branch only."""
    _, sigmas, noise = setup
    calls: list[dict[str, Any]] = []
    denoiser = AnalyticDenoiser(calls)
    args = {**split_args(), "mask": torch.ones(4), "options": {"tag": 1}}
    sample_zigzag(denoiser, noise * sigmas[0], sigmas, args, disable=True, cond_arg="label",
                  zigzag_steps=1)  # fmt: skip
    # 12 denoises at scale 3 (both branches, 8 rows) + 1 zag at scale 0 (4 rows)
    assert sorted(c["rows"] for c in calls) == [4] + [8] * 13
    assert all(c["options"] == {"tag": 1} and c["mask"].shape[0] == c["rows"] for c in calls)


def test_clear_errors(setup: tuple[AnalyticDenoiser, Tensor, Tensor]) -> None:
    denoiser, sigmas, noise = setup
    x = noise * sigmas[0]
    with pytest.raises(InvalidArgument, match="cond_scale"):
        sample_standard(denoiser, x, sigmas, {"cond": LABELS, "uncond": NULL}, disable=True)
    with pytest.raises(InvalidArgument, match="'cond'"):
        sample_standard(denoiser, x, sigmas, {"uncond": NULL}, disable=True, guidance=2.0)
    with pytest.raises(InvalidArgument, match="cfg"):
        sample_standard(denoiser, x, sigmas, split_args(), disable=True, cfg="both")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="zigzag_steps"):
        sample_zigzag(denoiser, x, sigmas, split_args(), disable=True, zigzag_steps=12)
    with pytest.raises(InvalidArgument, match="same keys"):
        bad = {"cond": {"label": LABELS}, "uncond": {"other": NULL}, "cond_scale": G}
        sample_standard(denoiser, x, sigmas, bad, disable=True)
    with pytest.raises(InvalidArgument, match="unconditional"):
        sample_standard(denoiser, x, sigmas, {"cond": LABELS, "cond_scale": G}, disable=True)
    with pytest.raises(InvalidArgument, match="conditioning="):
        sample(KDiffusionModel(denoiser, (2,)), Standard(), prompts=["red"], sigmas=sigmas)
    with pytest.raises(InvalidArgument, match="sigma_range"):
        KDiffusionModel(denoiser, (2,)).sigma_range()


def test_an_encoder_makes_prompts_work(setup: tuple[AnalyticDenoiser, Tensor, Tensor]) -> None:
    denoiser, sigmas, noise = setup
    analytic = AnalyticModel(demo_mixture())

    def encoder(prompts: list[str], negatives: list[str] | None) -> Any:
        cond, uncond = analytic.encode(prompts, negatives)
        return {"label": cond["label"]}, {"label": uncond["label"]}

    model = KDiffusionModel(denoiser, (2,), encoder=encoder, sigma_range=(0.03, 14.6))
    prompted = sample(
        model, Standard(guidance=G), prompts=["red", "green", "blue", "green"], noise=noise,
        schedule=Karras(steps=12),
    ).latents  # fmt: skip
    direct = sample_standard(
        denoiser, noise * sigmas[0], sigmas, split_args(), disable=True, cond_arg="label"
    )
    assert float((prompted - direct).abs().max()) <= 1e-10


@pytest.mark.skipif(
    importlib.util.find_spec("k_diffusion") is not None, reason="k-diffusion is installed"
)
def test_component_says_how_to_install_k_diffusion(tmp_path: Any) -> None:
    with pytest.raises(InvalidArgument, match=r"zsampling\[kdiffusion\]"):
        KDiffusionAdapter(path=str(tmp_path)).load()


@pytest.mark.parametrize(
    ("name", "expected"),
    [("heun", Heun()), ("dpm_2", DPM2()), ("uni_pc", UniPC(variant="bh1")), ("lms", LMS())],
)
def test_any_registered_solver_by_its_k_diffusion_name(
    setup: tuple[AnalyticDenoiser, Tensor, Tensor], name: str, expected: Any
) -> None:
    denoiser, sigmas, noise = setup
    x = noise * sigmas[0]
    ours = sample_standard(
        denoiser, x, sigmas, split_args(), disable=True, cond_arg="label", solver=name
    )
    vp = sample(
        AnalyticModel(demo_mixture()),
        Standard(guidance=G),
        conditioning=({"label": LABELS}, {"label": NULL}),
        noise=noise,
        sigmas=sigmas,
        solver=expected,
        noise_scale=float(Process("vp").coefficients(sigmas[:1])[1]),
    ).latents
    assert float((ours - vp).abs().max()) <= 1e-10
    with pytest.raises(InvalidArgument, match="res-multistep"):
        sample_standard(denoiser, x, sigmas, split_args(), disable=True, solver="dpm_3")
