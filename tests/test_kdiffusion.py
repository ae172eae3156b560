"""The k-diffusion adapter and sampler functions against k-diffusion's own samplers.

References are k-diffusion's code (``sample_euler``, ``sample_dpmpp_2m``, ``get_sigmas_karras``,
``DiscreteEpsDDPMDenoiser``, ``CompVisDenoiser``) with CFG done the k-diffusion way, by a wrapper
that batches both branches and combines the denoised outputs; ours do CFG with zsampling's guider.
Runs only where k-diffusion is installed (``.ci/run-kdiffusion``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

K = pytest.importorskip("k_diffusion")
from k_diffusion.external import (  # noqa: E402
    CompVisDenoiser,
    DiscreteEpsDDPMDenoiser,
    DiscreteVDDPMDenoiser,
)
from k_diffusion.sampling import get_sigmas_karras, sample_dpmpp_2m, sample_euler  # noqa: E402

from zsampling import (  # noqa: E402
    DDIM,
    W2SD,
    DPMSolverPP2M,
    Euler,
    Karras,
    Standard,
    Uniform,
    Zigzag,
    sample,
)
from zsampling.adapters.analytic import NULL_CLASS, AnalyticModel, demo_mixture  # noqa: E402
from zsampling.adapters.kdiffusion import (  # noqa: E402
    KDiffusionAdapter,
    KDiffusionModel,
    UNetEps,
    table_from_sigmas,
)
from zsampling.core.levels import scaled_linear_alphas_cumprod  # noqa: E402
from zsampling.integrations.kdiffusion import (  # noqa: E402
    sample_restart,
    sample_standard,
    sample_w2sd,
    sample_zigzag,
)
from zsampling.schedules.ays import AlignYourSteps  # noqa: E402
from zsampling.testing.tiny import tiny_sd_unet, write_tiny_pipeline  # noqa: E402

TOL = 1e-5
GUIDANCE = 4.0
SHAPE = (4, 8, 8)  # the tiny UNet takes any even size: 8x8 keeps the float64 runs fast


def max_diff(a: Tensor, b: Tensor) -> float:
    return float((a.to(torch.float64) - b.to(torch.float64)).abs().max())


def assert_parity(ours: Tensor, ref: Tensor) -> None:
    """float64: <= 1e-10 (well inside the 1e-5 bar). float32: <= 1e-5 or, for the random tiny
    UNet's large latents (|x| up to ~60 at the end of a full-range schedule), 1e-6 of the largest
    value, i.e. a few float32 ulps: k-diffusion steps in float32, zsampling in float64."""
    assert ours.dtype == ref.dtype
    diff = max_diff(ours, ref)
    if ref.dtype == torch.float64:
        assert diff <= 1e-10, diff
    else:
        assert diff <= max(TOL, 1e-6 * float(ref.abs().max())), diff
    assert float(ref.abs().max()) > 0.1  # a real result, not an all-zero latent


class KCFG(nn.Module):
    """CFG the k-diffusion way (as A1111's CFGDenoiser): both branches in one batch. A branch is
    a tensor (passed as ``key``) or a dict of keyword arguments (SDXL's added conditioning)."""

    def __init__(self, inner: Callable[..., Tensor], key: str = "encoder_hidden_states") -> None:
        super().__init__()
        self.inner = inner
        self.key = key

    def forward(
        self, x: Tensor, sigma: Tensor, uncond: Any, cond: Any, cond_scale: float
    ) -> Tensor:
        if not isinstance(cond, dict):
            uncond, cond = {self.key: uncond}, {self.key: cond}
        kwargs = {k: torch.cat([uncond[k], cond[k]]) for k in cond}
        both = self.inner(torch.cat([x, x]), torch.cat([sigma, sigma]), **kwargs)
        u, c = both.chunk(2)
        return u + (c - u) * cond_scale


class AnalyticEps(nn.Module):
    """The analytic mixture as a DDPM eps-network ``eps(x_vp, t, label)`` on SD's grid."""

    def __init__(self, model: AnalyticModel, schedule: DiscreteEpsDDPMDenoiser) -> None:
        super().__init__()
        self.model = model
        self.schedule = [schedule]  # not a submodule (no recursion)

    def forward(self, x: Tensor, t: Tensor, label: Tensor) -> Tensor:
        sigma = self.schedule[0].t_to_sigma(t).to(torch.float64)
        return self.model.predict(x, sigma, {"label": label}).eps


class FakeCompVis(nn.Module):
    """The interface CompVisDenoiser wraps: ``apply_model(x, t, cond)`` and ``alphas_cumprod``."""

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.eps = UNetEps(unet)
        dtype = next(unet.parameters()).dtype
        self.register_buffer("alphas_cumprod", scaled_linear_alphas_cumprod().to(dtype))

    def apply_model(self, x: Tensor, t: Tensor, cond: Tensor) -> Tensor:
        return self.eps(x, t, encoder_hidden_states=cond)


def unet_denoiser_of(dtype: torch.dtype) -> DiscreteEpsDDPMDenoiser:
    unet = tiny_sd_unet().to(dtype)
    return DiscreteEpsDDPMDenoiser(UNetEps(unet), scaled_linear_alphas_cumprod().to(dtype), False)


def text_of(dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(3)
    return torch.randn(2, 8, 32, generator=g).to(dtype), torch.randn(2, 8, 32, generator=g).to(
        dtype
    )


def start_of(dtype: torch.dtype) -> Tensor:
    return torch.randn(2, *SHAPE, generator=torch.Generator().manual_seed(5)).to(dtype)


# The parity tests run the tiny UNet in float64 (every difference is then a real one); one test
# and the CompVis test run it in float32, as it is used.
@pytest.fixture(scope="module")
def unet_denoiser() -> DiscreteEpsDDPMDenoiser:
    return unet_denoiser_of(torch.float64)


@pytest.fixture(scope="module")
def text() -> tuple[Tensor, Tensor]:
    return text_of(torch.float64)


@pytest.fixture(scope="module")
def start() -> Tensor:
    return start_of(torch.float64)


def karras(denoiser: Any, steps: int) -> Tensor:
    sigmas = get_sigmas_karras(steps, float(denoiser.sigma_min), float(denoiser.sigma_max))
    return sigmas.to(denoiser.sigmas.dtype)


def ours_vs_k(
    denoiser: Any,
    text: tuple[Tensor, Tensor],
    start: Tensor,
    sigmas: Tensor,
    solver: Any,
    reference: Callable[..., Tensor],
) -> tuple[Tensor, Tensor]:
    cond, uncond = text
    model = KDiffusionModel(denoiser, SHAPE)
    ours = sample(
        model,
        Standard(guidance=GUIDANCE),
        conditioning=({"encoder_hidden_states": cond}, {"encoder_hidden_states": uncond}),
        noise=start,
        sigmas=sigmas,
        solver=solver,
    ).latents
    extra = {"uncond": uncond, "cond": cond, "cond_scale": GUIDANCE}
    ref = reference(KCFG(denoiser), start * sigmas[0], sigmas, extra_args=extra, disable=True)
    return ours, ref


@pytest.mark.parametrize(
    ("solver", "reference"), [(Euler(), sample_euler), (DPMSolverPP2M(), sample_dpmpp_2m)]
)
def test_core_sampling_equals_k_diffusion_on_a_unet(
    unet_denoiser: DiscreteEpsDDPMDenoiser,
    text: tuple[Tensor, Tensor],
    start: Tensor,
    solver: Any,
    reference: Callable[..., Tensor],
) -> None:
    ours, ref = ours_vs_k(unet_denoiser, text, start, karras(unet_denoiser, 12), solver, reference)
    assert_parity(ours, ref)


def test_core_sampling_equals_k_diffusion_in_float32() -> None:
    denoiser = unet_denoiser_of(torch.float32)
    sigmas = karras(denoiser, 12)
    ours, ref = ours_vs_k(
        denoiser, text_of(torch.float32), start_of(torch.float32), sigmas, Euler(), sample_euler
    )
    assert_parity(ours, ref)


@pytest.mark.parametrize(
    ("solver", "reference"), [(Euler(), sample_euler), (DPMSolverPP2M(), sample_dpmpp_2m)]
)
def test_core_sampling_equals_k_diffusion_on_exact_scores(
    solver: Any, reference: Callable[..., Tensor]
) -> None:
    """float64 and an analytic eps: agreement to rounding, through k-diffusion's DDPM wrapper."""
    ac = scaled_linear_alphas_cumprod().to(torch.float64)
    denoiser = DiscreteEpsDDPMDenoiser(nn.Identity(), ac, False)
    denoiser.inner_model = AnalyticEps(AnalyticModel(demo_mixture()), denoiser)
    labels = torch.tensor([0, 1, 2, 0])
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    sigmas = karras(denoiser, 15).to(torch.float64)
    ours = sample(
        KDiffusionModel(denoiser, (2,)),
        Standard(guidance=GUIDANCE),
        conditioning=({"label": labels}, {"label": torch.full_like(labels, NULL_CLASS)}),
        noise=x,
        sigmas=sigmas,
        solver=solver,
    ).latents
    ref = reference(
        KCFG(denoiser, key="label"),
        x * sigmas[0],
        sigmas,
        extra_args={"uncond": torch.full_like(labels, NULL_CLASS), "cond": labels,
                    "cond_scale": GUIDANCE},
        disable=True,
    )  # fmt: skip
    assert max_diff(ours, ref) <= 1e-10


def test_sampler_functions_drop_in_for_k_diffusion(
    unet_denoiser: DiscreteEpsDDPMDenoiser, text: tuple[Tensor, Tensor], start: Tensor
) -> None:
    """Same call as a k-diffusion sampler; same result, same callback dicts."""
    cond, uncond = text
    sigmas = karras(unet_denoiser, 10)
    x = start * sigmas[0]
    ref_calls: list[dict[str, Any]] = []
    ours_calls: list[dict[str, Any]] = []
    ref = sample_euler(
        KCFG(unet_denoiser),
        x,
        sigmas,
        extra_args={"uncond": uncond, "cond": cond, "cond_scale": GUIDANCE},
        callback=ref_calls.append,
        disable=True,
    )
    split = {
        "cond": {"encoder_hidden_states": cond},
        "uncond": {"encoder_hidden_states": uncond},
        "cond_scale": GUIDANCE,
    }
    ours = sample_standard(unet_denoiser, x, sigmas, split, ours_calls.append, True)
    assert_parity(ours, ref)
    assert [c["i"] for c in ours_calls] == [c["i"] for c in ref_calls] == list(range(10))
    for o, r in zip(ours_calls, ref_calls, strict=True):
        assert set(o) == set(r) == {"x", "i", "sigma", "sigma_hat", "denoised"}
        assert float(o["sigma"]) == pytest.approx(float(r["sigma"]), rel=1e-6)
        assert max_diff(o["x"], r["x"]) <= TOL
        assert max_diff(o["denoised"], r["denoised"]) <= TOL
    # zero zigzag steps is sample_euler; DPM-Solver++(2M) is sample_dpmpp_2m
    flat = sample_zigzag(unet_denoiser, x, sigmas, split, disable=True, zigzag_steps=0)
    assert_parity(flat, ref)
    ref2m = sample_dpmpp_2m(
        KCFG(unet_denoiser), x, sigmas, {"uncond": uncond, "cond": cond, "cond_scale": GUIDANCE},
        disable=True,
    )  # fmt: skip
    ours2m = sample_standard(unet_denoiser, x, sigmas, split, disable=True, solver="dpmpp-2m")
    assert_parity(ours2m, ref2m)


@pytest.mark.parametrize("inversion", ["target", "official", "source"])
def test_sample_zigzag_equals_core_zigzag(
    unet_denoiser: DiscreteEpsDDPMDenoiser,
    text: tuple[Tensor, Tensor],
    start: Tensor,
    inversion: Any,
) -> None:
    cond, uncond = text
    sigmas = karras(unet_denoiser, 8)
    zz = Zigzag(guidance=GUIDANCE, inversion_guidance=0.5, zigzag_steps=5, inversion=inversion)
    core = sample(
        KDiffusionModel(unet_denoiser, SHAPE),
        zz,
        conditioning=({"encoder_hidden_states": cond}, {"encoder_hidden_states": uncond}),
        noise=start,
        sigmas=sigmas,
        solver=Euler(),
    ).latents
    split = {
        "cond": {"encoder_hidden_states": cond},
        "uncond": {"encoder_hidden_states": uncond},
        "cond_scale": GUIDANCE,
    }
    opts = dict(inversion_guidance=0.5, zigzag_steps=5, inversion=inversion)
    x = start * sigmas[0]
    ours = sample_zigzag(unet_denoiser, x, sigmas, split, disable=True, **opts)
    assert max_diff(ours, core) <= TOL
    # A denoiser that does CFG itself gets the scale of every call through extra_args.
    a1111 = {"uncond": uncond, "cond": cond, "cond_scale": GUIDANCE}
    via_model = sample_zigzag(
        KCFG(unet_denoiser), x, sigmas, a1111, disable=True, cfg="model", **opts
    )
    assert max_diff(via_model, core) <= TOL
    # ... and zigzag really changed the result
    plain = sample_euler(KCFG(unet_denoiser), x, sigmas, extra_args=a1111, disable=True)
    assert max_diff(ours, plain) > 1e-2


def test_compvis_denoiser_with_tensor_conditioning(
    text: tuple[Tensor, Tensor], start: Tensor
) -> None:
    """k-diffusion's CompVisDenoiser convention: ``cond=`` tensors in extra_args."""
    cond, uncond = text
    denoiser = CompVisDenoiser(FakeCompVis(tiny_sd_unet().double()))
    sigmas = karras(denoiser, 8)
    x = start * sigmas[0]
    extra = {"uncond": uncond, "cond": cond, "cond_scale": GUIDANCE}
    ref = sample_euler(KCFG(denoiser, key="cond"), x, sigmas, extra_args=extra, disable=True)
    assert_parity(sample_standard(denoiser, x, sigmas, extra, disable=True), ref)
    assert max_diff(sample_zigzag(denoiser, x, sigmas, extra, disable=True), ref) > 1e-2


def test_karras_and_ays_schedules_on_the_denoisers_table(
    unet_denoiser: DiscreteEpsDDPMDenoiser, text: tuple[Tensor, Tensor], start: Tensor
) -> None:
    model = KDiffusionModel(unet_denoiser, SHAPE, family="sd")
    assert model.table is not None
    # the table gives back the denoiser's own levels
    torch.testing.assert_close(model.table.sigmas, unet_denoiser.sigmas, rtol=1e-12, atol=0)
    ours = Karras(steps=12).sigmas(model)
    torch.testing.assert_close(ours, karras(unet_denoiser, 12).double(), rtol=1e-6, atol=0)
    from diffusers.schedulers import AysSchedules

    published = torch.tensor(AysSchedules["StableDiffusionSigmas"], dtype=torch.float64)
    ays = AlignYourSteps(steps=10).sigmas(model)  # family "sd" from the adapter
    torch.testing.assert_close(ays, published, rtol=2e-3, atol=1e-3)
    # The published AYS sigmas as given, through ours and k-diffusion: the same result.
    ours_ays, ref_ays = ours_vs_k(unet_denoiser, text, start, published, Euler(), sample_euler)
    assert_parity(ours_ays, ref_ays)
    # AYS at another step count (log-linear) and Uniform run Z-Sampling too.
    cond, uncond = text
    for schedule in (AlignYourSteps(steps=14), Uniform(steps=6, final="zero")):
        out = sample(
            model,
            Zigzag(guidance=GUIDANCE),
            conditioning=({"encoder_hidden_states": cond}, {"encoder_hidden_states": uncond}),
            noise=start,
            schedule=schedule,
        ).latents
        assert bool(torch.isfinite(out).all())


def test_restart_and_w2sd_functions(
    unet_denoiser: DiscreteEpsDDPMDenoiser, text: tuple[Tensor, Tensor], start: Tensor
) -> None:
    cond, uncond = text
    sigmas = karras(unet_denoiser, 10)
    x = start * sigmas[0]
    split = {"cond": cond, "uncond": uncond, "cond_scale": GUIDANCE}
    denoiser = CompVisDenoiser(FakeCompVis(tiny_sd_unet().double()))
    ref = sample_euler(
        KCFG(denoiser, key="cond"),
        x,
        sigmas,
        extra_args={"uncond": uncond, "cond": cond, "cond_scale": GUIDANCE},
        disable=True,
    )
    assert_parity(sample_restart(denoiser, x, sigmas, split, disable=True, rounds=0), ref)
    jumps: list[tuple[float, float]] = []
    gen = torch.Generator().manual_seed(0)

    def noise_sampler(sigma: Tensor, sigma_next: Tensor) -> Tensor:
        jumps.append((float(sigma), float(sigma_next)))
        return torch.randn(x.shape, generator=gen)

    restarted = sample_restart(
        denoiser, x, sigmas, split, disable=True, noise_sampler=noise_sampler
    )
    assert len(jumps) == 2 and jumps[0][0] > jumps[0][1]  # two rounds, noisier level first
    assert max_diff(restarted, ref) > 1e-3
    # W2SD with the strong model as its own weak model is Z-Sampling at the weak scale.
    w2sd = sample_w2sd(
        denoiser, x, sigmas, split, disable=True, weak_model=denoiser, weak_guidance=1.0,
        reflection_steps=4, inversion="target",
    )  # fmt: skip
    zz = sample_zigzag(
        denoiser, x, sigmas, split, disable=True, inversion_guidance=1.0, zigzag_steps=4,
        inversion="target",
    )  # fmt: skip
    assert max_diff(w2sd, zz) <= 1e-6
    assert W2SD().name == "w2sd"


def test_adapter_predicts_a_consistent_pair_at_zero(
    unet_denoiser: DiscreteEpsDDPMDenoiser, text: tuple[Tensor, Tensor], start: Tensor
) -> None:
    """At sigma 0 (inverting a clean latent) x0 is the latent and eps is finite."""
    model = KDiffusionModel(unet_denoiser, SHAPE)
    pred = model.predict(
        start, torch.tensor([0.0, 1.5], dtype=torch.float64), {"encoder_hidden_states": text[0]}
    )
    assert torch.equal(pred.x0[0], start[0]) and bool(torch.isfinite(pred.eps).all())
    torch.testing.assert_close(pred.x0[1] + 1.5 * pred.eps[1], start[1], rtol=0, atol=1e-5)
    # a source-mode DDIM inversion from sigma 0 runs on it
    sigmas = karras(unet_denoiser, 5)
    out = sample(
        model,
        Zigzag(guidance=GUIDANCE, inversion="source"),
        conditioning=({"encoder_hidden_states": text[0]}, {"encoder_hidden_states": text[1]}),
        noise=start,
        sigmas=sigmas,
        solver=DDIM(),
    ).latents
    assert bool(torch.isfinite(out).all())


def test_table_from_sigmas_rejects_a_bad_table() -> None:
    from zsampling.core.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="ascending"):
        table_from_sigmas(torch.tensor([2.0, 1.0]))


def test_component_loads_a_pipeline_folder_through_k_diffusion(tmp_path: Path) -> None:
    """The ``k-diffusion`` component: a pipeline folder, the UNet in k-diffusion's wrapper; same
    latents as the ``diffusers`` adapter on the same levels (final latents coincide at sigma 0).

    The zag is ``source`` (model evaluated where the latent sits), which is the same in VE and VP
    space; ``target``/``official`` zags feed the network a latent at a level it does not sit at,
    and k-diffusion's wrapper rescales it for that level (``c_in``) where the VP adapter does not,
    so those modes legitimately differ between the two adapters.
    """
    from zsampling.adapters.diffusers import DiffusersAdapter

    folder = write_tiny_pipeline(tmp_path / "sd")
    kmodel = KDiffusionAdapter(path=str(folder), height=16, width=16).load()
    vp = DiffusersAdapter(path=str(folder), height=16, width=16).load()
    assert isinstance(kmodel, KDiffusionModel)
    sigmas = Karras(steps=8).sigmas(kmodel)
    noise = torch.randn(1, *SHAPE, generator=torch.Generator().manual_seed(2))
    common = dict(prompts=["a cat"], noise=noise, sigmas=sigmas, solver=Euler())
    ours = sample(
        kmodel, Zigzag(guidance=GUIDANCE, zigzag_steps=3, inversion="source"), **common
    ).latents
    s_max = float(sigmas[0])
    vp_out = sample(
        vp,
        Zigzag(guidance=GUIDANCE, zigzag_steps=3, inversion="source"),
        noise_scale=s_max / (1 + s_max**2) ** 0.5,  # the same start, in VP scaling
        **common,
    ).latents
    # float32 through two routes (k-diffusion scales the latent by c_in, the VP adapter does
    # not): a few float32 ulps of the largest value apart
    assert max_diff(ours, vp_out) <= 1e-5 * float(vp_out.abs().max())
    images = kmodel.decode(ours)
    assert images[0].size == (16, 16)


class PlainUNet(nn.Module):
    """A diffusers UNet called as k-diffusion's DDPM wrappers call their inner model,
    ``inner(x, t, **kwargs)``, written here so the reference shares no code with the adapter."""

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, x: Tensor, t: Tensor, **kwargs: Tensor) -> Tensor:
        added = {k: kwargs.pop(k) for k in ("text_embeds", "time_ids") if k in kwargs}
        return self.unet(x, t, added_cond_kwargs=added or None, return_dict=False, **kwargs)[0]


@pytest.mark.parametrize(
    ("family", "wrapper"), [("sdxl", DiscreteEpsDDPMDenoiser), ("sd-v", DiscreteVDDPMDenoiser)]
)
@pytest.mark.parametrize(
    ("solver", "reference"), [(Euler(), sample_euler), (DPMSolverPP2M(), sample_dpmpp_2m)]
)
def test_component_on_sdxl_and_v_prediction_equals_k_diffusion(
    tmp_path: Path, family: Any, wrapper: Any, solver: Any, reference: Callable[..., Tensor]
) -> None:
    """The ``k-diffusion`` component on SDXL (pooled text and size ids reach the UNet through
    k-diffusion's wrapper as keyword arguments) and on v-prediction (``DiscreteVDDPMDenoiser``),
    against k-diffusion's own sampler over its own wrapper of the same UNet."""
    folder = write_tiny_pipeline(tmp_path / family, family)
    kmodel = KDiffusionAdapter(path=str(folder), height=16, width=16).load()
    assert isinstance(kmodel, KDiffusionModel)
    assert isinstance(kmodel.denoiser, wrapper)
    cond, uncond = kmodel.encode(["a red cube", "two cats"])
    assert ("time_ids" in cond) == (family == "sdxl")
    from diffusers import DDPMScheduler, UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(str(folder), subfolder="unet").eval()
    alphas_cumprod = DDPMScheduler.from_pretrained(
        str(folder), subfolder="scheduler"
    ).alphas_cumprod
    denoiser = wrapper(PlainUNet(unet), alphas_cumprod, False)
    sigmas = karras(denoiser, 8)
    start = torch.randn(2, *SHAPE, generator=torch.Generator().manual_seed(4))
    ours = sample(
        kmodel,
        Standard(guidance=GUIDANCE),
        conditioning=(cond, uncond),
        noise=start,
        sigmas=sigmas,
        solver=solver,
    ).latents
    extra = {"uncond": uncond, "cond": cond, "cond_scale": GUIDANCE}
    ref = reference(KCFG(denoiser), start * sigmas[0], sigmas, extra_args=extra, disable=True)
    assert_parity(ours, ref)
