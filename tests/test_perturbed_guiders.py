"""Guiders with a perturbed branch (PAG, SEG, SLG) and AutoGuidance: parity with diffusers'
pipelines, the hooks leave the model exactly as it was (after a run and after a failing run), the
extra rows are counted, and models that cannot be perturbed are refused clearly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from diffusers import (
    DDIMScheduler,
    EulerDiscreteScheduler,
    StableDiffusionPAGPipeline,
    StableDiffusionXLPAGPipeline,
)
from tiny_pipelines import latents_noise, with_scheduler
from typer.testing import CliRunner

from zsampling import DDIM, Euler, GuidanceContext, Standard, Uniform, sample
from zsampling.adapters.diffusers import DiffusersModel
from zsampling.adapters.digits import DigitsAdapter
from zsampling.adapters.flow import FlowMatchModel, SD3Adapter
from zsampling.cli import app
from zsampling.core.errors import InvalidArgument
from zsampling.guiders import PAG, SEG, SLG, AutoGuidance
from zsampling.schedules import FlowMatch, Scheduler
from zsampling.testing.compare import relative_norm
from zsampling.testing.tiny_flow import write_tiny_flow_pipeline

pytestmark = pytest.mark.usefixtures("single_thread")

PROMPTS = ["a red cube", "a cat on a mat"]
SEEDS = [3, 4]
GUIDANCE = 3.0
STEPS = 6


def pag_parity(
    model: DiffusersModel,
    pipeline_class: type,
    scheduler: type,
    solver: Any,
    guidance: float = GUIDANCE,
) -> None:
    noise = latents_noise(SEEDS, model.latent_shape())
    pipe = pipeline_class.from_pipe(with_scheduler(model, scheduler), pag_applied_layers="mid")
    pipe.set_progress_bar_config(disable=True)
    ref = pipe(
        PROMPTS,
        latents=noise.clone(),
        output_type="latent",
        guidance_scale=guidance,
        pag_scale=3.0,
        num_inference_steps=STEPS,
        height=model.height,
        width=model.width,
    ).images
    run = dict(prompts=PROMPTS, seeds=SEEDS, solver=solver)
    schedule = Scheduler(steps=STEPS, scheduler=scheduler.__name__)
    ours = sample(model, Standard(guidance=guidance), schedule=schedule, guider=PAG(), **run)
    assert relative_norm(ours.latents, ref) <= 1e-5
    plain = sample(model, Standard(guidance=guidance), schedule=schedule, **run).latents
    assert relative_norm(plain, ref) > 1e-3  # the perturbed branch made a difference
    rows = STEPS * len(PROMPTS)
    counts = ours.counter
    uncond = rows if guidance != 1 else 0  # at scale 1 the pipeline skips CFG, and so do we
    assert (counts.cond_rows, counts.uncond_rows, counts.perturbed_rows) == (rows, uncond, rows)
    assert counts.model_calls == 2 * STEPS  # CFG's batched call, then the perturbed one


@pytest.mark.parametrize("guidance", [GUIDANCE, 1.0])
def test_pag_equals_the_sd_pag_pipeline(tiny_sd: DiffusersModel, guidance: float) -> None:
    """At CFG scale 1 the pipeline's PAG is ``cond + w (cond - perturbed)``: so is ours."""
    pag_parity(tiny_sd, StableDiffusionPAGPipeline, DDIMScheduler, DDIM(), guidance)


def test_pag_equals_the_sdxl_pag_pipeline(tiny_sdxl: DiffusersModel) -> None:
    pag_parity(tiny_sdxl, StableDiffusionXLPAGPipeline, EulerDiscreteScheduler, Euler())


@pytest.fixture(scope="module")
def sd3(tmp_path_factory: pytest.TempPathFactory) -> FlowMatchModel:
    folder = write_tiny_flow_pipeline(tmp_path_factory.mktemp("sd3"), "sd3")
    model = SD3Adapter(path=str(folder), max_sequence_length=32).load()
    assert isinstance(model, FlowMatchModel)
    return model


@pytest.mark.parametrize("layers", [[0], [1]])
def test_slg_equals_the_sd3_pipelines_skip_guidance_layers(
    sd3: FlowMatchModel, layers: list[int]
) -> None:
    x = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    common = dict(guidance_scale=4.0, num_inference_steps=10, output_type="latent")
    ref = sd3.pipeline(
        PROMPTS,
        latents=x.clone(),
        max_sequence_length=32,
        skip_guidance_layers=layers,
        skip_layer_guidance_start=0.05,
        skip_layer_guidance_stop=0.5,
        **common,
    ).images
    plain = sd3.pipeline(PROMPTS, latents=x.clone(), max_sequence_length=32, **common).images
    guider = SLG(layers=layers, perturbed_start=0.05, perturbed_stop=0.5)
    ours = sample(
        sd3,
        Standard(guidance=4.0),
        prompts=PROMPTS,
        noise=x,
        schedule=FlowMatch(steps=10),
        solver=Euler(),
        guider=guider,
    )
    assert relative_norm(ours.latents, ref) <= 1e-5
    assert relative_norm(plain, ref) > 1e-3
    # the pipeline's interval 0.5 < i < 5: levels 1..4, one perturbed row per prompt each
    assert ours.counter.perturbed_rows == 4 * len(PROMPTS)


def fingerprint(network: torch.nn.Module, call: Any) -> tuple[dict[str, torch.Tensor], Any]:
    state = {k: v.detach().clone() for k, v in network.state_dict().items()}
    with torch.no_grad():
        return state, call()


def assert_unchanged(network: torch.nn.Module, before: Any, call: Any) -> None:
    state, out = before
    after = network.state_dict()
    assert state.keys() == after.keys()
    assert all(torch.equal(state[k], after[k]) for k in state)
    with torch.no_grad():
        assert torch.equal(call(), out)
    leftover = [
        name
        for name, module in network.named_modules()
        if getattr(getattr(module, "_diffusers_hook", None), "hooks", None)
    ]
    assert leftover == []


class Boom(RuntimeError):
    pass


def fail_on_call(model: Any, monkeypatch: pytest.MonkeyPatch, failing: int) -> None:
    """``model.predict`` raises on its ``failing``-th call (counting from 0)."""
    predict = model.predict
    calls = iter(range(10_000))

    def broken(*args: Any, **kwargs: Any) -> Any:
        if next(calls) == failing:
            raise Boom("the network failed part-way")
        return predict(*args, **kwargs)

    monkeypatch.setattr(model, "predict", broken)


@pytest.mark.parametrize("guider", [PAG(), SEG(), SLG(perturbed_start=0.0, perturbed_stop=1.0)])
def test_hooks_leave_the_unet_as_it_was_after_a_run_and_after_a_failing_one(
    tiny_sd: DiffusersModel, guider: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    unet = tiny_sd.unet
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, *tiny_sd.latent_shape(), generator=gen)
    cond, _ = tiny_sd.encode(["a red cube"])
    levels = torch.full((1,), 2.0, dtype=torch.float64)
    forward = lambda: tiny_sd.predict(x, levels, cond).eps  # noqa: E731
    before = fingerprint(unet, forward)
    run = dict(prompts=["a red cube"], seeds=[0], schedule=Uniform(steps=3), guider=guider)
    sample(tiny_sd, Standard(guidance=GUIDANCE), **run)
    assert_unchanged(unet, before, forward)
    # calls per step: the perturbed branch (hooks on), then CFG's; call 2 is step 1's perturbed
    fail_on_call(tiny_sd, monkeypatch, failing=2)
    with pytest.raises(Boom):
        sample(tiny_sd, Standard(guidance=GUIDANCE), **run)
    monkeypatch.undo()
    assert_unchanged(unet, before, forward)


def test_block_skip_hooks_leave_the_sd3_transformer_as_it_was(
    sd3: FlowMatchModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    cond, _ = sd3.encode(["two cats"])
    levels = torch.full((1,), 1.0, dtype=torch.float64)
    forward = lambda: sd3.predict(x, levels, cond).eps  # noqa: E731
    before = fingerprint(sd3.transformer, forward)
    guider = SLG(perturbed_start=0.0, perturbed_stop=1.0)
    run = dict(prompts=["two cats"], noise=x, schedule=FlowMatch(steps=3), guider=guider)
    sample(sd3, Standard(guidance=4.0), **run)
    assert_unchanged(sd3.transformer, before, forward)
    # SLG's interval is strict at 0: step 0 is CFG's call (0), step 1 starts with the skip (1)
    fail_on_call(sd3, monkeypatch, failing=1)
    with pytest.raises(Boom):
        sample(sd3, Standard(guidance=4.0), **run)
    monkeypatch.undo()
    assert_unchanged(sd3.transformer, before, forward)


@pytest.mark.parametrize("guider", [PAG(), SEG(), SLG()])
def test_a_model_without_layers_to_perturb_is_refused_naming_guider_and_model(
    analytic: Any, guider: Any
) -> None:
    with pytest.raises(InvalidArgument) as err:
        sample(
            analytic,
            Standard(),
            prompts=["red"],
            seeds=[0],
            schedule=Uniform(steps=3),
            guider=guider,
        )
    assert err.value.field == "guider.use"
    assert err.value.value == guider.name
    assert "AnalyticModel" in str(err.value)


def test_the_cli_refuses_pag_on_the_analytic_model_with_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "pag.toml"
    config.write_text(
        '[model]\nuse = "analytic"\n[schedule]\nuse = "uniform"\nsteps = 4\n'
        '[sampler]\nuse = "standard"\n[guider]\nuse = "pag"\n'
        f'[run]\nprompts = ["red"]\nseeds = [0]\noutput = "{tmp_path / "out"}"\n'
    )
    result = CliRunner().invoke(app, ["run", str(config)])
    assert result.exit_code == 2, result.output
    flat = " ".join(result.output.split())
    assert "guider.use" in flat and "pag" in flat and "AnalyticModel" in flat
    assert "Traceback" not in result.output


def test_layers_outside_the_model_are_refused_naming_the_setting(tiny_sd: DiffusersModel) -> None:
    with pytest.raises(InvalidArgument) as err:
        sample(
            tiny_sd,
            Standard(),
            prompts=["a cube"],
            seeds=[0],
            schedule=Uniform(steps=2),
            guider=PAG(layers=[3]),
        )
    assert err.value.field == "guider.layers (pag)"
    assert "below 1" in str(err.value)


@pytest.fixture(scope="module")
def digits() -> tuple[Any, Any]:
    return DigitsAdapter().load(), DigitsAdapter(weak=True).load()


def test_autoguidance_is_weak_plus_scale_times_cond_minus_weak(digits: tuple[Any, Any]) -> None:
    """One guided call, restated: both models' conditional predictions, combined on eps."""
    strong, weak = digits
    x = torch.randn(2, *strong.latent_shape(), generator=torch.Generator().manual_seed(5))
    sigmas = Uniform(steps=STEPS).sigmas(strong)
    seen: list[Any] = []

    class Probe:  # a sampler that makes one guided call and stops
        name = "probe"

        def sample(self, latents: torch.Tensor, path: Any) -> torch.Tensor:
            context = GuidanceContext(2, STEPS, "denoise")
            seen.append(path.guiders["main"](x, float(sigmas[2]), 2.5, context))
            return latents

    out = sample(
        strong,
        Probe(),  # type: ignore[arg-type]
        prompts=["3", "7"],
        seeds=[0, 1],
        schedule=Uniform(steps=STEPS),
        guider=AutoGuidance(),
        extra_models={"weak": weak},
    )
    cond, _ = strong.encode(["3", "7"])
    levels = torch.full((2,), float(sigmas[2]), dtype=torch.float64)
    good = strong.predict(x, levels, cond).eps.double()
    bad = weak.predict(x, levels, weak.encode(["3", "7"])[0]).eps.double()
    torch.testing.assert_close(seen[0].eps, bad + 2.5 * (good - bad))
    counts = out.counter
    assert (counts.cond_rows, counts.uncond_rows, counts.perturbed_rows) == (2, 0, 2)
    assert counts.model_calls == 2 and counts.guided_calls == 1


def test_autoguidance_without_a_weak_model_is_refused(digits: tuple[Any, Any]) -> None:
    with pytest.raises(InvalidArgument) as err:
        sample(
            digits[0],
            Standard(),
            prompts=["3"],
            seeds=[0],
            schedule=Uniform(steps=2),
            guider=AutoGuidance(),
        )
    assert err.value.field == "guider.weak_model"


def test_default_layers_per_family() -> None:
    """UNets: the mid block's attention; transformers: block 1 for PAG and SEG, 7-9 for SLG (the
    middle block where those do not exist); explicit layers are kept."""
    from zsampling.adapters.perturbation import TRANSFORMER_STACK, UNET_STACK, perturbation_layers
    from zsampling.core.perturbation import Perturbation

    pag, seg, slg = (
        Perturbation(k, "g") for k in ("attention-scores", "smoothed-energy", "skip-layers")
    )
    assert [perturbation_layers(UNET_STACK, 1, p) for p in (pag, seg, slg)] == [(0,)] * 3
    assert [perturbation_layers(TRANSFORMER_STACK, 24, p) for p in (pag, seg, slg)] == [
        (1,),
        (1,),
        (7, 8, 9),
    ]
    assert perturbation_layers(TRANSFORMER_STACK, 8, slg) == (4,)
    assert perturbation_layers(TRANSFORMER_STACK, 1, pag) == (0,)
    assert perturbation_layers(TRANSFORMER_STACK, 24, Perturbation("skip-layers", "g", (3,))) == (
        3,
    )


@pytest.mark.parametrize("family", ["sd3", "flux-schnell", "flux-dev"])
def test_perturbing_guiders_run_at_their_defaults_on_transformers(
    family: str, sd3: FlowMatchModel
) -> None:
    from zsampling.adapters.flux import flux_model
    from zsampling.testing.tiny_flow import tiny_flux_pipeline

    model: Any = (
        sd3 if family == "sd3" else flux_model(tiny_flux_pipeline(schnell=family == "flux-schnell"))
    )
    for guider in (PAG(), SEG(), SLG()):
        result = sample(
            model,
            Standard(guidance=3.5),
            prompts=["two cats"],
            seeds=[0],
            schedule=FlowMatch(steps=6),
            guider=guider,
        )
        assert bool(torch.isfinite(result.latents).all()), guider.name
        assert result.counter.perturbed_rows > 0, guider.name


def test_pag_combination_restated_inside_and_outside_the_cfg_interval(
    digits: tuple[Any, Any],
) -> None:
    """``uncond + s (cond - uncond) + w (cond - perturbed)`` inside CFG's interval; outside it
    (as at scale 1) the unconditional branch is not evaluated and the perturbed one still is:
    ``cond + w (cond - perturbed)``, as diffusers' PAG guider does."""
    model = digits[0]
    rule = PAG(pag_scale=2.0, stop=0.5)
    cond, uncond = model.encode(["3", "7"])
    x = torch.randn(2, *model.latent_shape(), generator=torch.Generator().manual_seed(8))
    sigmas = Uniform(steps=STEPS).sigmas(model)
    for level, inside in ((1, True), (4, False)):
        guider = rule.bind(model, cond, uncond)
        sigma = float(sigmas[level])
        got = guider(x, sigma, 3.0, GuidanceContext(level, STEPS, "denoise"))
        levels = torch.full((2,), sigma, dtype=torch.float64)
        c = model.predict(x, levels, cond).eps.double()
        with model.perturbed(rule.perturbation()):
            p = model.predict(x, levels, cond).eps.double()
        u = model.predict(x, levels, uncond).eps.double()
        base = u + 3.0 * (c - u) if inside else c
        # float32 network: one batched call and separate ones round differently (~1e-6)
        torch.testing.assert_close(got.eps, base + 2.0 * (c - p), rtol=1e-5, atol=1e-5)
        assert float((p - c).abs().max()) > 1e-2  # the perturbation is not a no-op
        counts = guider.counter
        assert (counts.cond_rows, counts.uncond_rows, counts.perturbed_rows) == (
            2,
            2 if inside else 0,
            2,
        )
