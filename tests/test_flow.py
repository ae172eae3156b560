"""Flow matching (SD3, SD3.5) against the diffusers pipeline itself, and inversion in flow space.

The tiny SD3 pipeline (`zsampling.testing.tiny_flow`: a 2-layer SD3 transformer, two tiny CLIP
encoders, a tiny T5 whose tokenizer is built from a vocabulary list) is built from configs, saved
with ``save_pretrained`` and loaded back through the ``sd3`` component, so the real loading code
runs. No downloads.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from zsampling import Euler, Karras, Standard, Zigzag, sample
from zsampling.adapters.flow import FlowMatchModel, SD3Adapter
from zsampling.core.cfg import CFG
from zsampling.core.errors import InvalidArgument
from zsampling.core.levels import Process, sigma_from_t, t_from_sigma
from zsampling.core.path import SamplingPath
from zsampling.integrations.diffusers import generate
from zsampling.schedules import FlowMatch
from zsampling.testing.tiny_flow import write_tiny_flow_pipeline

TOKENS = 32  # T5 prompt length for the tiny model (the pipeline's default is 256)
PROMPTS = ["a red cube", "two cats"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_flow_pipeline(tmp_path_factory.mktemp("sd3"), "sd3")


@pytest.fixture(scope="module")
def model(folder: Path) -> FlowMatchModel:
    loaded = SD3Adapter(path=str(folder), max_sequence_length=TOKENS).load()
    assert isinstance(loaded, FlowMatchModel)
    return loaded


def noise(batch: int = 2, seed: int = 0) -> Tensor:
    return torch.randn(batch, 4, 16, 16, generator=torch.Generator().manual_seed(seed))


def pipeline_latents(model: FlowMatchModel, latents: Tensor, guidance: float, steps: int) -> Tensor:
    out: Tensor = model.pipeline(
        PROMPTS[: latents.shape[0]],
        latents=latents,
        guidance_scale=guidance,
        num_inference_steps=steps,
        output_type="latent",
        max_sequence_length=TOKENS,
    ).images
    return out


def max_diff(a: Tensor, b: Tensor) -> float:
    return float((a.to(torch.float64) - b.to(torch.float64)).abs().max())


def test_levels_and_flow_times() -> None:
    t = torch.tensor([1.0, 0.75, 0.5, 0.0], dtype=torch.float64)
    sigma = sigma_from_t(t)
    assert sigma.tolist() == [torch.inf, 3.0, 1.0, 0.0]
    torch.testing.assert_close(t_from_sigma(sigma), t, rtol=0, atol=1e-15)
    alpha, s = Process("flow").coefficients(sigma)
    torch.testing.assert_close(s, t, rtol=0, atol=1e-15)
    torch.testing.assert_close(alpha, 1 - t, rtol=0, atol=1e-15)


@pytest.mark.parametrize(("guidance", "steps"), [(4.0, 8), (1.0, 5), (7.0, 3)])
def test_standard_sampling_equals_the_sd3_pipeline(
    model: FlowMatchModel, guidance: float, steps: int
) -> None:
    x = noise()
    ref = pipeline_latents(model, x, guidance, steps)
    ours = sample(
        model,
        Standard(guidance=guidance),
        prompts=PROMPTS,
        noise=x,
        schedule=FlowMatch(steps=steps),
        solver=Euler(),
    ).latents
    assert max_diff(ours, ref) <= 1e-4
    assert float(ref.abs().max()) > 0.5


def test_generate_draws_noise_as_the_pipeline_does(model: FlowMatchModel) -> None:
    """``generate`` with seeds = the pipeline with one CPU generator per prompt (and its default
    T5 prompt length, 256)."""
    pipe = model.pipeline
    ref = pipe(
        PROMPTS,
        generator=[torch.Generator().manual_seed(s) for s in (11, 12)],
        guidance_scale=3.0,
        num_inference_steps=4,
        output_type="latent",
    ).images
    ours = generate(
        pipe, PROMPTS, sampler=Standard(guidance=3.0), steps=4, seed=11, output_type="latent"
    )
    assert isinstance(ours, Tensor)
    assert max_diff(ours, ref) <= 1e-4
    images = generate(pipe, PROMPTS[0], sampler=Zigzag(guidance=3.0), steps=3, seed=0)
    assert isinstance(images, list) and images[0].size == (32, 32)


def test_dynamic_shifting_matches_the_pipeline(folder: Path) -> None:
    from diffusers import FlowMatchEulerDiscreteScheduler

    model = SD3Adapter(path=str(folder), max_sequence_length=TOKENS).load()
    assert isinstance(model, FlowMatchModel)
    pipe = model.pipeline
    pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(
        pipe.scheduler.config, use_dynamic_shifting=True, max_shift=1.5
    )
    x = noise(1, seed=4)
    ref = pipeline_latents(model, x, 4.0, 6)
    ours = sample(
        model, Standard(guidance=4.0), prompts=PROMPTS[:1], noise=x, schedule=FlowMatch(steps=6)
    ).latents
    assert max_diff(ours, ref) <= 1e-4
    # an explicit mu overrides the one computed from the image size (and changes the levels)
    computed = FlowMatch(steps=6).sigmas(model)
    assert not torch.equal(FlowMatch(steps=6, mu=0.2).sigmas(model)[1:-1], computed[1:-1])


@torch.inference_mode()
def test_prediction_is_a_consistent_pair_carrying_the_velocity(model: FlowMatchModel) -> None:
    """``alpha x0 + s eps = x`` at every level (0 and inf included) and ``eps - x0 = v``: so the
    Euler step inverts exactly when its prediction is reused (invert, then denoise back)."""
    cond, _ = model.encode(PROMPTS)
    x = noise()
    for sigma in (float("inf"), 3.0, 0.4, 0.0):
        level = torch.full((2,), sigma, dtype=torch.float64)
        pred = model.predict(x, level, cond)
        alpha, s = Process("flow").coefficients(level[:1])
        torch.testing.assert_close(alpha * pred.x0 + s * pred.eps, x.double(), rtol=0, atol=1e-5)
        v = model.transformer(
            hidden_states=x,
            timestep=torch.full((2,), float(t_from_sigma(level[:1])) * 1000),
            encoder_hidden_states=cond["encoder_hidden_states"],
            pooled_projections=cond["pooled_projections"],
            return_dict=False,
        )[0]
        torch.testing.assert_close(pred.eps - pred.x0, v, rtol=0, atol=1e-5)
    # invert x from level 5 to level 4 with its prediction, denoise back with the same one
    sigmas = FlowMatch(steps=8).sigmas(model)
    uncond = model.encode(PROMPTS)[1]
    path = SamplingPath(sigmas, model.process, {"main": CFG().bind(model, cond, uncond)}, Euler())
    pred = path.predict(x, 5, guidance=3.0)
    up = path.ddim(x, pred, 4)
    assert max_diff(up, x) > 1e-2
    assert max_diff(path.ddim(up, pred, 5), x) <= 1e-5


def restated_flow_zigzag(
    model: FlowMatchModel, x: Tensor, steps: int, g1: float, g2: float, lam: int, mode: str
) -> Tensor:
    """Z-Sampling written with the pipeline's own scheduler for every zig and flow-time arithmetic
    for every zag, from x_next at ``t_{i+1}`` up to ``t_i``:

    - ``source``: Euler in ``t`` with the velocity where x_next sits,
      ``x = x_next + (t_i - t_{i+1}) v(x_next, t_{i+1})``;
    - ``target``: the velocity at ``t_i``, used as an epsilon-model's output is used by DDIM
      (zsampling's rule for every process): ``eps = x_next + (1 - t_i) v`` is kept, ``x0`` is
      re-derived at ``t_{i+1}``, then ``x = (1 - t_i) x0 + t_i eps``.
    """
    from diffusers import FlowMatchEulerDiscreteScheduler

    pipe = model.pipeline
    cond, uncond, pooled, neg_pooled = pipe.encode_prompt(
        PROMPTS, None, None, max_sequence_length=TOKENS
    )

    def velocity(x: Tensor, t: Tensor, scale: float) -> Tensor:
        v = pipe.transformer(
            hidden_states=torch.cat([x, x]),
            timestep=t.expand(2 * x.shape[0]),
            encoder_hidden_states=torch.cat([uncond, cond]),
            pooled_projections=torch.cat([neg_pooled, pooled]),
            return_dict=False,
        )[0]
        v_u, v_c = v.chunk(2)
        return v_u + scale * (v_c - v_u)

    sched = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config)
    sched.set_timesteps(steps)
    ts, n = sched.sigmas.double(), sched.config.num_train_timesteps
    for i, timestep in enumerate(sched.timesteps):
        sched._step_index = i  # re-stepping a level: the scheduler's hidden state, set by hand
        x_next = sched.step(velocity(x, timestep, g1), timestep, x).prev_sample
        if i < lam:
            xn = x_next.double()
            if mode == "source":
                v = velocity(x_next, ts[i + 1].float() * n, g2).double()
                x = (xn + (ts[i] - ts[i + 1]) * v).float()
            else:
                eps = xn + (1 - ts[i]) * velocity(x_next, timestep, g2).double()
                x0 = (xn - ts[i + 1] * eps) / (1 - ts[i + 1])
                x = ((1 - ts[i]) * x0 + ts[i] * eps).float()
            sched._step_index = i
            x_next = sched.step(velocity(x, timestep, g1), timestep, x).prev_sample
        x = x_next
    return x


@pytest.mark.parametrize("mode", ["source", "target"])
@torch.inference_mode()
def test_zigzag_on_flow_equals_the_restated_algorithm(model: FlowMatchModel, mode: Any) -> None:
    x = noise()
    ref = restated_flow_zigzag(model, x, steps=6, g1=4.0, g2=1.0, lam=4, mode=mode)
    ours = sample(
        model,
        Zigzag(guidance=4.0, inversion_guidance=1.0, zigzag_steps=4, inversion=mode),
        prompts=PROMPTS,
        noise=x,
        schedule=FlowMatch(steps=6),
        guider=CFG(skip_unused_branches=False),
    ).latents
    assert max_diff(ours, ref) <= 1e-4
    plain = pipeline_latents(model, x, 4.0, 6)
    assert max_diff(ours, plain) > 1e-2  # the zigzag did something


def test_ddim_inversion_round_trip_error_shrinks_with_steps(model: FlowMatchModel) -> None:
    """Invert a generated latent from t = 0 up to pure noise (``source`` steps: velocity where the
    latent sits, Euler in t upwards) and denoise it back: what remains is the Euler discretisation
    error of the two passes, so it falls with the steps."""
    cond, uncond = model.encode(PROMPTS)
    start = sample(
        model, Standard(guidance=2.0), prompts=PROMPTS, noise=noise(), schedule=FlowMatch(steps=8)
    ).latents
    errors = []
    for steps in (3, 6, 12, 24):
        sigmas = FlowMatch(steps=steps).sigmas(model)
        path = SamplingPath(
            sigmas, model.process, {"main": CFG().bind(model, cond, uncond)}, Euler()
        )
        x = start
        for i in reversed(range(steps)):
            x = path.invert(x, i, 2.0, evaluate_at="source")
        assert float(x.std()) > 0.3  # reached a noise-like latent at t = 1
        for i in range(steps):
            x = path.denoise(x, i, 2.0)
        errors.append(max_diff(x, start))
    # first order: each doubling of the steps (about) halves the error (measured: 0.38, 0.17,
    # 0.083, 0.041)
    assert all(b < 0.6 * a for a, b in itertools.pairwise(errors)), errors


def test_karras_levels_run_on_flow(model: FlowMatchModel) -> None:
    """The finite trained range (t = 1, pure noise, is sigma = inf) feeds a Karras schedule."""
    lo, hi = model.sigma_range()
    assert 0.0 < lo < 0.01 and 1000.0 < hi < float("inf")
    out = sample(
        model, Zigzag(guidance=3.0), prompts=PROMPTS, noise=noise(), schedule=Karras(steps=5)
    ).latents
    assert bool(torch.isfinite(out).all())


def test_clear_errors(folder: Path, tmp_path: Path) -> None:
    from zsampling.adapters.analytic import AnalyticModel, demo_mixture

    with pytest.raises(InvalidArgument, match="flow-matching"):
        FlowMatch(steps=4).sigmas(AnalyticModel(demo_mixture()))
    (tmp_path / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    with pytest.raises(InvalidArgument, match="StableDiffusion3Pipeline"):
        SD3Adapter(path=str(tmp_path)).load()
    with pytest.raises(InvalidArgument, match="multiple of 4"):
        SD3Adapter(path=str(folder), height=30).load()


def test_sd35_through_the_sd3_adapter(tmp_path: Path) -> None:
    """SD3.5 is the same pipeline class: its transformer has RMS-normed attention and MMDiT-X
    dual-attention layers, which the adapter never sees. Standard sampling equals the pipeline;
    what zsampling does not do is the pipeline's skip-layer guidance (``skip_guidance_layers``,
    off by default)."""
    folder = write_tiny_flow_pipeline(tmp_path / "sd35", "sd3.5")
    model = SD3Adapter(path=str(folder), max_sequence_length=TOKENS).load()
    assert isinstance(model, FlowMatchModel)
    config = model.transformer.config
    assert config.qk_norm == "rms_norm" and tuple(config.dual_attention_layers) == (0,)
    x = noise()
    ref = pipeline_latents(model, x, 4.0, 5)
    ours = sample(
        model, Standard(guidance=4.0), prompts=PROMPTS, noise=x, schedule=FlowMatch(steps=5)
    ).latents
    assert max_diff(ours, ref) <= 1e-5 * float(ref.abs().max())
    sd3 = SD3Adapter(path=str(write_tiny_flow_pipeline(tmp_path / "sd3", "sd3"))).load()
    assert max_diff(pipeline_latents(sd3, x, 4.0, 5), ref) > 1e-2  # a different network
