"""zsampling's samplers inside real ComfyUI sampling (the vendored source, a tiny SD1.5 UNet).

Parity is with ComfyUI's own samplers (``euler``, ``dpmpp_2m``) and with zsampling's core
``sample()`` on the same network; guidance per call is checked on what ComfyUI really evaluates
(its ``model_function_wrapper`` sees every UNet call, its post-CFG hook every guided result).
Runs in the ComfyUI venv (.ci/run-comfyui); skips elsewhere, saying why.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import torch
from comfy_tiny import (
    cfg_guider,
    conditioning,
    core_zigzag,
    import_comfyui,
    load_pack,
    model_sigmas,
    run,
    tiny_patcher,
)
from pydantic import BaseModel
from torch import Tensor

import_comfyui()

import comfy.samplers  # noqa: E402
from comfy_extras.nodes_custom_sampler import (  # noqa: E402
    Guider_Basic,
    Guider_DualCFG,
    Noise_RandomNoise,
    SamplerCustomAdvanced,
)
from comfy_extras.nodes_model_advanced import (  # noqa: E402
    ModelSamplingDiscrete,
    ModelSamplingSD3,
)
from comfy_extras.nodes_perpneg import Guider_PerpNeg  # noqa: E402

from zsampling import Standard, Zigzag  # noqa: E402
from zsampling.core.errors import InvalidArgument  # noqa: E402
from zsampling.core.guidance import EvaluationCounter  # noqa: E402
from zsampling.core.path import SamplingPath  # noqa: E402
from zsampling.core.solvers import Euler  # noqa: E402
from zsampling.integrations.comfyui.sampling import SamplerSpec, comfy_sampler  # noqa: E402
from zsampling.testing.compare import relative_max as rel  # noqa: E402

NODES = load_pack().NODE_CLASS_MAPPINGS
G = 5.0
POS, NEG = conditioning(1), conditioning(2)


@pytest.fixture(scope="module")
def patcher() -> Any:
    return tiny_patcher()


@pytest.fixture(scope="module")
def flow(patcher: Any) -> Any:
    """The same UNet as a flow model: ComfyUI's ModelSamplingSD3 node (CONST, shift 3)."""
    (m,) = ModelSamplingSD3().patch(patcher, 3.0)
    return m


def zigzag_node(**settings: Any) -> Any:
    values = dict(guidance=-1, inversion_guidance=0.0, zigzag_steps=-1, rounds=1)
    values.update(settings)
    values.setdefault("inversion", "source")
    (sampler,) = NODES["ZSamplingZigzag"]().get_sampler(solver="euler", **values)
    return sampler


def recorder(patcher: Any) -> tuple[Any, list[dict[str, Any]]]:
    """A clone of ``patcher`` whose every UNet call is recorded (rows, branches, sigma)."""
    calls: list[dict[str, Any]] = []

    def wrapper(apply_model: Any, args: dict[str, Any]) -> Tensor:
        calls.append(
            {
                "rows": args["input"].shape[0],
                "branches": list(args["cond_or_uncond"]),
                "sigma": float(args["timestep"][0]),
            }
        )
        out: Tensor = apply_model(args["input"], args["timestep"], **args["c"])
        return out

    clone = patcher.clone()
    clone.set_model_unet_function_wrapper(wrapper)
    return clone, calls


# -- parity ----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["sd", "sd-v", "flow", "sd-inpaint"])
def test_zero_zigzag_steps_is_comfyuis_euler(patcher: Any, flow: Any, model: str) -> None:
    m = flow if model == "flow" else patcher
    if model == "sd-v":  # the same UNet read as v-prediction (ComfyUI's ModelSamplingDiscrete)
        (m,) = ModelSamplingDiscrete().patch(patcher, "v_prediction", False)
    sigmas = model_sigmas(m, 8, "simple" if model == "flow" else "karras")
    image: dict[str, Any] = {}
    if model == "sd-inpaint":  # ComfyUI blends the kept region in on every call, ours included
        image["latent"] = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5))
        image["mask"] = (torch.arange(64).view(1, 1, 8, 8) % 3 == 0).float()
    euler = comfy.samplers.sampler_object("euler")
    ref = run(cfg_guider(m, G, POS, NEG), euler, sigmas, **image)
    ours = run(cfg_guider(m, G, POS, NEG), zigzag_node(zigzag_steps=0), sigmas, **image)
    assert rel(ours, ref) <= 1e-5
    # a real zigzag changes the result (so the parity above is not vacuous)
    assert rel(run(cfg_guider(m, G, POS, NEG), zigzag_node(), sigmas, **image), ref) > 1e-5


def test_standard_dpmpp_2m_is_comfyuis_dpmpp_2m(patcher: Any) -> None:
    sigmas = model_sigmas(patcher, 8)
    ref = run(cfg_guider(patcher, G), comfy.samplers.sampler_object("dpmpp_2m"), sigmas)
    (ours,) = NODES["ZSamplingSampler"]().get_sampler("standard", "{}", "dpmpp-2m")
    assert rel(run(cfg_guider(patcher, G), ours, sigmas), ref) <= 1e-5


@pytest.mark.parametrize(
    ("model", "inversion"),
    [("sd", "source"), ("sd", "target"), ("sd", "official"), ("flow", "source")],
)
def test_zigzag_equals_core_zigzag_on_the_same_network(
    patcher: Any, flow: Any, model: str, inversion: str
) -> None:
    """ComfyUI's CFG and guider vs zsampling's own CFG guider around the same UNet."""
    m = patcher if model == "sd" else flow
    sigmas = model_sigmas(m, 8, "karras" if model == "sd" else "simple")
    settings: dict[str, Any] = dict(inversion_guidance=0.5, inversion=inversion)
    ours = run(cfg_guider(m, G, POS, NEG), zigzag_node(**settings), sigmas)
    core = core_zigzag(m, sigmas, Zigzag(guidance=G, **settings), POS, NEG)
    assert rel(ours, core) <= 1e-5


# -- guidance per call -----------------------------------------------------------------------


def test_evaluations_match_the_documented_formula(patcher: Any) -> None:
    """T + 2*lambda*rounds guided calls, one UNet call each; rows 2B per zig, B per zag at 0 or 1
    (docs/comfyui.md)."""
    steps, lam, rounds, batch = 6, 3, 2, 2
    sigmas = model_sigmas(patcher, steps)
    for zag, branch in ((0.0, 1), (1.0, 0)):
        m, calls = recorder(patcher)
        counter = EvaluationCounter()
        spec = SamplerSpec(
            Zigzag,
            {"inversion_guidance": zag, "zigzag_steps": lam, "rounds": rounds},
            Euler(),
            counter=counter,
        )
        guider = cfg_guider(m, G, conditioning(1, batch), conditioning(2, batch))
        run(guider, comfy_sampler(spec), sigmas, batch=batch)
        guided = steps + 2 * lam * rounds
        zigs, zags = steps + lam * rounds, lam * rounds
        assert len(calls) == guided
        assert sum(c["rows"] for c in calls) == 2 * batch * zigs + batch * zags
        assert sum(c["branches"] == [branch] for c in calls) == zags  # the zag: one branch only
        assert counter.as_dict() == {
            "guided_calls": guided,
            "model_calls": guided,
            "rows": 2 * batch * zigs + batch * zags,
            "cond_rows": batch * (zigs + (zags if branch == 0 else 0)),
            "uncond_rows": batch * (zigs + (zags if branch == 1 else 0)),
            "perturbed_rows": 0,
        }


class Probe(BaseModel):
    """A sampler that asks the path for guided predictions at a few scales and keeps them."""

    name: ClassVar[str] = "probe"
    guidance: float = 1.0
    seen: ClassVar[dict[str, Any]] = {}

    def sample(self, x: Tensor, path: SamplingPath) -> Tensor:
        guider = path.guiders["main"]
        model = guider.model
        comfy_guider = model.call.guider  # type: ignore[attr-defined]
        sigma = model._comfy_sigma(path.point(1).sigma, x)  # type: ignore[attr-defined]
        options = model.call.extra_args["model_options"]  # type: ignore[attr-defined]
        conds = comfy_guider.conds

        def alone(branch: str) -> Tensor:  # ComfyUI's prediction for one branch, batch as is
            out: list[Tensor] = comfy.samplers.calc_cond_batch(
                comfy_guider.inner_model, [conds[branch]], x, sigma, options
            )
            return out[0]

        c, u = alone("positive"), alone("negative")
        self.seen.update(
            grad=torch.is_grad_enabled(),
            cond=c,
            uncond=u,
            negative_as_positive=path.predict(x, 1, 3.0, conditioning="uncond").x0,
            **{f"at {s}": path.predict(x, 1, s).x0 for s in (0.0, 1.0, 3.0)},
        )
        with pytest.raises(InvalidArgument, match="'cond' or 'uncond'"):
            path.predict(x, 1, 3.0, conditioning="style")
        return x


def test_zag_at_0_is_unconditional_and_at_1_conditional(patcher: Any) -> None:
    """Exactly ComfyUI's own prediction for that one branch (no trace of the other), and CFG in
    between; with gradients off (ComfyUI's sampler functions run with them on)."""
    spec = SamplerSpec(Probe, {}, Euler())
    run(cfg_guider(patcher, G), comfy_sampler(spec), model_sigmas(patcher, 4))
    seen = Probe.seen
    assert torch.equal(seen["at 0.0"], seen["uncond"])
    assert torch.equal(seen["at 1.0"], seen["cond"])
    assert torch.equal(seen["negative_as_positive"], seen["uncond"])
    guided = seen["uncond"] + 3.0 * (seen["cond"] - seen["uncond"])
    assert rel(seen["at 3.0"], guided) <= 1e-6
    assert rel(seen["cond"], seen["uncond"]) > 1e-5  # the branches differ (far beyond rounding)
    assert seen["grad"] is False

    grads: list[bool] = []

    def plain(model: Any, x: Tensor, sigmas: Tensor, **kw: Any) -> Tensor:
        grads.append(torch.is_grad_enabled())
        return x

    run(cfg_guider(patcher, G), comfy.samplers.KSAMPLER(plain), model_sigmas(patcher, 4))
    assert grads == [True]  # why sample_in_comfy turns them off itself


@pytest.mark.parametrize("both_branches", [False, True])
def test_each_calls_scale_reaches_comfyuis_cfg_hooks(patcher: Any, both_branches: bool) -> None:
    """A post-CFG function (another node's) sees every call with that call's scale, and the
    guider's own cfg is back afterwards. A node that asks for both branches
    (``disable_cfg1_optimization``) gets them at scale 0 too."""
    seen: list[tuple[float, bool]] = []

    def post_cfg(args: dict[str, Any]) -> Tensor:
        same = torch.equal(args["cond_denoised"], args["uncond_denoised"])
        seen.append((float(args["cond_scale"]), same))
        out: Tensor = args["denoised"]
        return out

    m, calls = recorder(patcher)
    m.set_model_sampler_post_cfg_function(post_cfg, disable_cfg1_optimization=both_branches)
    guider = cfg_guider(m, G)
    run(guider, zigzag_node(inversion_guidance=0.0, zigzag_steps=2), model_sigmas(m, 4))
    zig, zag = (G, False), (0.0, not both_branches)  # a dropped cond is the uncond prediction
    assert seen == [zig, zag, zig, zig, zag, zig, zig, zig]
    assert [len(c["branches"]) for c in calls] == [2, 2 if both_branches else 1, 2] * 2 + [2, 2]
    assert guider.cfg == G


# -- progress, previews, noise ---------------------------------------------------------------


def test_progress_bar_and_previews_see_every_denoise_step(patcher: Any) -> None:
    """Through the SamplerCustomAdvanced node, as the UI runs it."""
    import comfy.utils
    import latent_preview
    from comfy.cli_args import LatentPreviewMethod

    updates: list[tuple[int, int, Any]] = []

    def hook(value: int, total: int, preview: Any, node_id: Any = None) -> None:
        updates.append((value, total, preview))

    method = latent_preview.args.preview_method
    latent_preview.args.preview_method = LatentPreviewMethod.Latent2RGB
    comfy.utils.set_progress_bar_global_hook(hook)
    try:
        out, denoised = SamplerCustomAdvanced().sample(
            Noise_RandomNoise(3),
            cfg_guider(patcher, G),
            zigzag_node(zigzag_steps=2, rounds=2),
            model_sigmas(patcher, 4),
            {"samples": torch.zeros(1, 4, 8, 8)},
        )
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
        latent_preview.args.preview_method = method
    # steps 0 and 1 denoise three times (zig, then two zag-zig rounds), steps 2 and 3 once
    assert [(v, t) for v, t, _ in updates] == [(1, 4)] * 3 + [(2, 4)] * 3 + [(3, 4), (4, 4)]
    assert all(p is not None and p[0] == "JPEG" for _, _, p in updates)
    # the last callback saw the last denoise: its x0 is the output (Euler to sigma 0 lands on it)
    assert torch.equal(denoised["samples"], out["samples"])


def test_restart_noise_is_seeded(patcher: Any) -> None:
    (restart,) = NODES["ZSamplingRestart"]().get_sampler(
        solver="euler", guidance=-1, restart_min=0.5, restart_max=3.0, rounds=2
    )
    sigmas = model_sigmas(patcher, 8)
    a, b = (run(cfg_guider(patcher, G), restart, sigmas, seed=4) for _ in range(2))
    c = run(cfg_guider(patcher, G), restart, sigmas, seed=5)
    euler = run(cfg_guider(patcher, G), comfy.samplers.sampler_object("euler"), sigmas, seed=4)
    assert torch.equal(a, b) and bool(torch.isfinite(a).all())
    assert rel(a, c) > 1e-3 and rel(a, euler) > 1e-5


# -- W2SD's second model ---------------------------------------------------------------------


def test_w2sd_with_its_own_model_as_weak_is_zigzag(patcher: Any) -> None:
    """Also when inpainting a batch: the weak model gets the same image and per-item mask."""
    sigmas = model_sigmas(patcher, 6)
    (w2sd,) = NODES["ZSamplingW2SD"]().get_sampler(
        weak_model=patcher.clone(), solver="euler", guidance=-1, weak_guidance=0.5,
        reflection_steps=-1, rounds=1, inversion="source",
    )  # fmt: skip
    zigzag = zigzag_node(inversion_guidance=0.5)
    ours = run(cfg_guider(patcher, G), w2sd, sigmas)
    assert rel(ours, run(cfg_guider(patcher, G), zigzag, sigmas)) <= 1e-6
    image = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(5))
    mask = torch.zeros(2, 1, 8, 8)
    mask[0, :, :4] = 1.0  # item 0 resamples its top half, item 1 its left half
    mask[1, :, :, :4] = 1.0
    guider = cfg_guider(patcher, G, conditioning(1, 2), conditioning(2, 2))
    ours = run(guider, w2sd, sigmas, latent=image, mask=mask)
    ref = run(guider, zigzag, sigmas, latent=image, mask=mask)
    assert rel(ours, ref) <= 1e-6 and rel(ours[1], ours[0]) > 1e-3


def test_w2sd_inverts_with_the_weak_model_only(patcher: Any) -> None:
    steps = 6
    strong, strong_calls = recorder(patcher)
    weak, weak_calls = recorder(tiny_patcher(seed=9))
    (w2sd,) = NODES["ZSamplingW2SD"]().get_sampler(
        weak_model=weak, solver="euler", guidance=-1, weak_guidance=-1,
        reflection_steps=3, rounds=1, inversion="source",
    )  # fmt: skip
    out = run(cfg_guider(strong, G), w2sd, model_sigmas(patcher, steps))
    assert bool(torch.isfinite(out).all())
    assert len(strong_calls) == steps + 3 and len(weak_calls) == 3
    assert all(sorted(c["branches"]) == [0, 1] for c in weak_calls)  # weak_guidance = G: CFG


# -- other guiders and bad input -------------------------------------------------------------


def test_perpneg_guider_takes_the_scale_per_call(patcher: Any) -> None:
    def perpneg() -> Any:
        guider = Guider_PerpNeg(patcher)
        guider.set_conds(POS, NEG, conditioning(3))
        guider.set_cfg(G, 1.0)
        return guider

    sigmas = model_sigmas(patcher, 6)
    ref = run(perpneg(), comfy.samplers.sampler_object("euler"), sigmas)
    assert rel(run(perpneg(), zigzag_node(zigzag_steps=0), sigmas), ref) <= 1e-5
    zz = run(perpneg(), zigzag_node(), sigmas)
    assert bool(torch.isfinite(zz).all()) and rel(zz, ref) > 1e-5


def test_basic_guider_allows_scale_1_only(patcher: Any) -> None:
    sigmas = model_sigmas(patcher, 4)

    def basic() -> Any:
        guider = Guider_Basic(patcher)
        guider.set_conds(POS)
        return guider

    with pytest.raises(InvalidArgument, match=r"asked for = 0\.0 is invalid: only 1 works with Gu"):
        run(basic(), zigzag_node(guidance=1.0), sigmas)
    out = run(basic(), zigzag_node(guidance=1.0, inversion_guidance=1.0), sigmas)
    assert bool(torch.isfinite(out).all())


def test_guiders_with_their_own_scales_are_refused(patcher: Any) -> None:
    guider = Guider_DualCFG(patcher)
    guider.set_conds(POS, conditioning(3), NEG)
    guider.set_cfg(G, 2.0)
    with pytest.raises(InvalidArgument, match=r"guider = 'Guider_DualCFG' is invalid"):
        run(guider, zigzag_node(), model_sigmas(patcher, 4))


def test_bad_settings_are_named(patcher: Any) -> None:
    node = NODES["ZSamplingSampler"]()
    with pytest.raises(InvalidArgument, match=r"settings = .* a JSON object of zigzag's"):
        node.get_sampler("zigzag", "{inversion: 1}", "euler")
    with pytest.raises(InvalidArgument, match=r"zigzag.rounds = 0 is invalid: .*greater than"):
        node.get_sampler("zigzag", '{"rounds": 0}', "euler")
    with pytest.raises(InvalidArgument, match=r"zigzag.gamma = .*a setting of zigzag: guidance"):
        node.get_sampler("zigzag", '{"gamma": 2}', "euler")
    with pytest.raises(InvalidArgument, match=r"solver = 'dpm-fast' is invalid"):
        node.get_sampler("zigzag", "{}", "dpm-fast")
    (sampler,) = node.get_sampler("zigzag", '{"zigzag_steps": 9}', "euler")
    with pytest.raises(InvalidArgument, match=r"zigzag_steps = 9 is invalid: .*4-step schedule"):
        run(cfg_guider(patcher, G), sampler, model_sigmas(patcher, 4))


def test_standard_guidance_defaults_to_the_guiders_cfg(patcher: Any) -> None:
    spec = SamplerSpec(Standard, {}, Euler())
    assert spec.build(7.5) == Standard(guidance=7.5)
    assert SamplerSpec(Standard, {"guidance": 2.0}, Euler()).build(7.5) == Standard(guidance=2.0)


def test_the_declared_main_scale_defaults_to_the_guiders_cfg() -> None:
    """Whatever the setting is called (its class's ``scales``); without a declared scale a
    ``guidance`` setting is the sampler's own."""
    from test_scales import Strength, Unscaled

    assert SamplerSpec(Strength, {}, Euler()).build(7.5) == Strength(strength=7.5)
    assert SamplerSpec(Unscaled, {}, Euler()).build(7.5) == Unscaled()
    zz = SamplerSpec(Zigzag, {"inversion_guidance": 1.0}, Euler()).build(7.5)
    assert zz == Zigzag(guidance=7.5, inversion_guidance=1.0)
