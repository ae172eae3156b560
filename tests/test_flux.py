"""FLUX.1 (dev and schnell) against ``FluxPipeline.__call__`` itself, and zigzag on it.

The tiny pipelines (`zsampling.testing.tiny_flow`) are saved with ``save_pretrained`` and loaded
back through the ``flux`` component, so the real loading code runs. Parity is relative: max
|diff| / max |latent| (the pipeline steps in float32, zsampling in float64).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor

from zsampling import CFG, Euler, Standard, Zigzag, sample
from zsampling.adapters.flux import FluxAdapter, FluxGuidedModel, FluxModel, pack, unpack
from zsampling.core.errors import InvalidArgument
from zsampling.core.levels import sigma_from_t
from zsampling.core.model import GuidanceEmbedding
from zsampling.core.path import SamplingPath
from zsampling.guiders import TrueCFG
from zsampling.integrations.diffusers import generate
from zsampling.samplers import AsymmetryZigzag
from zsampling.schedules import FlowMatch
from zsampling.testing.compare import relative_max as relative
from zsampling.testing.tiny_flow import tiny_flux_pipeline, write_tiny_flow_pipeline

pytestmark = pytest.mark.usefixtures("single_thread")

TOKENS = 32  # T5 prompt length for most tests (the pipeline's default, 512, in the generate test)
SIZE = 32  # pixels: 16x16x16 latents, 64 packed tokens
PROMPTS = ["a red cube", "two cats"]
RTOL = 1e-5


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> FluxGuidedModel:
    folder = write_tiny_flow_pipeline(tmp_path_factory.mktemp("flux"), "flux")
    model = FluxAdapter(path=str(folder), height=SIZE, width=SIZE, max_sequence_length=TOKENS)
    loaded = model.load()
    assert isinstance(loaded, FluxGuidedModel)
    return loaded


@pytest.fixture(scope="module")
def schnell(tmp_path_factory: pytest.TempPathFactory) -> FluxModel:
    folder = write_tiny_flow_pipeline(tmp_path_factory.mktemp("flux-schnell"), "flux-schnell")
    loaded = FluxAdapter(path=str(folder), height=SIZE, width=SIZE, max_sequence_length=TOKENS)
    model = loaded.load()
    assert type(model) is FluxModel and not isinstance(model, GuidanceEmbedding)
    return model


def noise(batch: int = 2, seed: int = 0) -> Tensor:
    """Unpacked starting noise (what zsampling holds)."""
    return torch.randn(batch, 16, 16, 16, generator=torch.Generator().manual_seed(seed))


def pipeline_latents(model: FluxModel, x: Tensor, steps: int, **kwargs: Any) -> Tensor:
    out: Tensor = model.pipeline(
        PROMPTS[: x.shape[0]],
        latents=pack(x),
        height=SIZE,
        width=SIZE,
        num_inference_steps=steps,
        output_type="latent",
        max_sequence_length=TOKENS,
        **kwargs,
    ).images
    return out


def test_packing_is_the_pipelines() -> None:
    from diffusers import FluxPipeline

    x = noise()
    packed = FluxPipeline._pack_latents(x, 2, 16, 16, 16)
    assert torch.equal(pack(x), packed)
    assert torch.equal(unpack(packed, 16, 16), x)
    assert torch.equal(FluxPipeline._unpack_latents(packed, SIZE, SIZE, 2), x)


@pytest.mark.parametrize(("guidance", "steps"), [(3.5, 6), (1.0, 4), (0.0, 3)])
def test_guidance_distilled_sampling_equals_the_pipeline(
    dev: FluxGuidedModel, guidance: float, steps: int
) -> None:
    """The sampler's guidance is the embedded ``guidance_scale``, at 1 and 0 too: one
    transformer call per step, conditional rows only."""
    x = noise()
    ref = pipeline_latents(dev, x, steps, guidance_scale=guidance)
    run = sample(
        dev,
        Standard(guidance=guidance),
        prompts=PROMPTS,
        noise=x,
        schedule=FlowMatch(steps=steps),
        solver=Euler(),
    )
    assert relative(dev.pack(run.latents), ref) <= RTOL
    assert float(ref.abs().max()) > 0.5
    assert (run.counter.model_calls, run.counter.rows) == (steps, 2 * steps)
    assert run.counter.uncond_rows == 0


def test_true_cfg_equals_the_pipeline(dev: FluxGuidedModel) -> None:
    """``true-cfg``: both branches at the embedded scale, combined with ``true_cfg_scale``, in
    one batched call per step."""
    x, steps, negatives = noise(), 5, ["blurry", "ugly"]
    ref = pipeline_latents(
        dev, x, steps, guidance_scale=3.5, negative_prompt=negatives, true_cfg_scale=4.0
    )
    run = sample(
        dev,
        Standard(guidance=3.5),
        prompts=PROMPTS,
        negative_prompts=negatives,
        noise=x,
        schedule=FlowMatch(steps=steps),
        guider=TrueCFG(true_cfg_scale=4.0),
    )
    assert relative(dev.pack(run.latents), ref) <= RTOL
    assert (run.counter.model_calls, run.counter.rows) == (steps, 4 * steps)
    plain = pipeline_latents(dev, x, steps, guidance_scale=3.5)
    assert relative(plain, ref) > 1e-2  # true CFG changed the result


def test_schnell_equals_the_pipeline(schnell: FluxModel) -> None:
    """No guidance embedding: scale 1 is the pipeline's plain call; another scale is CFG
    against the negative prompt, which is the pipeline's true CFG."""
    x, steps = noise(seed=3), 4
    ref = pipeline_latents(schnell, x, steps)
    ours = sample(
        schnell, Standard(guidance=1.0), prompts=PROMPTS, noise=x, schedule=FlowMatch(steps=steps)
    )
    assert relative(schnell.pack(ours.latents), ref) <= RTOL
    ref_cfg = pipeline_latents(schnell, x, steps, negative_prompt=["", ""], true_cfg_scale=3.0)
    cfg = sample(
        schnell, Standard(guidance=3.0), prompts=PROMPTS, noise=x, schedule=FlowMatch(steps=steps)
    )
    assert relative(schnell.pack(cfg.latents), ref_cfg) <= RTOL
    # zigzag on schnell is zigzag on a CFG model: both branches per zig, the zag at gamma2 = 0
    # evaluates the unconditional (empty-prompt) branch alone
    zig = sample(
        schnell,
        Zigzag(guidance=3.0, inversion_guidance=0.0),
        prompts=PROMPTS,
        noise=x,
        schedule=FlowMatch(steps=steps),
    )
    zigs, zags, batch = 2 * steps - 1, steps - 1, len(PROMPTS)
    assert zig.counter.rows == zigs * 2 * batch + zags * batch
    assert zig.counter.cond_rows == zigs * batch
    with pytest.raises(InvalidArgument, match="use 'cfg'"):
        sample(
            schnell,
            Standard(guidance=3.0),
            prompts=PROMPTS,
            noise=x,
            schedule=FlowMatch(steps=steps),
            guider=TrueCFG(true_cfg_scale=2.0),
        )


def test_levels_are_the_pipelines_own(dev: FluxGuidedModel) -> None:
    """FLUX's sigmas (``linspace(1, 1/n, n)``) and ``mu`` from the packed token count; SD3's
    sequence-length rule (4x the tokens) would shift the levels differently."""
    pipeline_latents(dev, noise(1), 7, guidance_scale=3.5)
    walked = sigma_from_t(dev.pipeline.scheduler.sigmas)
    ours = FlowMatch(steps=7).sigmas(dev)
    assert torch.equal(ours, walked)
    assert dev.image_seq_len() == 64
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift

    sd3_rule = FlowMatch(steps=7, mu=calculate_shift(4 * 64)).sigmas(dev)
    assert not torch.allclose(sd3_rule[1:-1], ours[1:-1])


class GuidanceSpy:
    """Records the guidance input of every transformer call."""

    def __init__(self, transformer: Any) -> None:
        self.seen: list[list[float]] = []
        self.handle = transformer.register_forward_pre_hook(self.hook, with_kwargs=True)

    def hook(self, module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        guidance = kwargs.get("guidance")
        self.seen.append([] if guidance is None else guidance.tolist())


def test_zigzag_embeds_each_calls_scale_and_counts_3t_minus_2(dev: FluxGuidedModel) -> None:
    """Zig at ``guidance``, zag at ``inversion_guidance``: each call's own embedded scale; with
    lambda = T - 1 the run costs 3T - 2 transformer calls of B rows (no unconditional branch)."""
    steps = 5
    spy = GuidanceSpy(dev.transformer)
    try:
        run = sample(
            dev,
            Zigzag(guidance=3.5, inversion_guidance=1.0),
            prompts=PROMPTS,
            noise=noise(),
            schedule=FlowMatch(steps=steps),
        )
    finally:
        spy.handle.remove()
    expected: list[list[float]] = []
    for i in range(steps):
        expected.append([3.5, 3.5])
        if i < steps - 1:
            expected += [[1.0, 1.0], [3.5, 3.5]]
    assert spy.seen == expected
    guided = 3 * steps - 2
    assert run.counter.as_dict() == {
        "guided_calls": guided,
        "model_calls": guided,
        "rows": 2 * guided,
        "cond_rows": 2 * guided,
        "uncond_rows": 0,
        "perturbed_rows": 0,
    }
    with_true_cfg = sample(
        dev,
        Zigzag(guidance=3.5, inversion_guidance=1.0),
        prompts=PROMPTS,
        noise=noise(),
        schedule=FlowMatch(steps=steps),
        guider=TrueCFG(true_cfg_scale=2.0),
    )
    assert with_true_cfg.counter.rows == 4 * guided
    assert relative(with_true_cfg.latents, run.latents) > 1e-3


def test_asymmetry_zigzag_with_the_prompt_as_zag_prompt_is_zigzag(dev: FluxGuidedModel) -> None:
    kw: dict[str, Any] = dict(prompts=PROMPTS, noise=noise(), schedule=FlowMatch(steps=4))
    zig = sample(dev, Zigzag(guidance=3.5, inversion_guidance=3.5), **kw)
    same = sample(dev, AsymmetryZigzag(guidance=3.5, zag_prompt="{prompt}"), **kw)
    other = sample(dev, AsymmetryZigzag(guidance=3.5, zag_prompt="a dog"), **kw)
    assert torch.equal(zig.latents, same.latents)
    assert relative(other.latents, zig.latents) > 1e-3


def test_inversion_round_trip_converges_at_first_order(dev: FluxGuidedModel) -> None:
    """Invert a generated latent from t = 0 up to pure noise (``source`` steps) and denoise it
    back: the Euler error of the two passes halves (about) with each doubling of the steps."""
    cond, uncond = dev.encode(PROMPTS)
    start = sample(
        dev, Standard(guidance=3.5), prompts=PROMPTS, noise=noise(), schedule=FlowMatch(steps=8)
    ).latents
    errors = []
    for steps in (3, 6, 12, 24):
        sigmas = FlowMatch(steps=steps).sigmas(dev)
        path = SamplingPath(sigmas, dev.process, {"main": CFG().bind(dev, cond, uncond)}, Euler())
        x = start
        for i in reversed(range(steps)):
            x = path.invert(x, i, 3.5, evaluate_at="source")
        assert float(x.std()) > 0.3  # a noise-like latent at t = 1
        for i in range(steps):
            x = path.denoise(x, i, 3.5)
        errors.append(float((x - start).abs().max()))
    assert all(b < 0.6 * a for a, b in itertools.pairwise(errors)), errors


def test_generate_on_a_pipeline_built_in_memory() -> None:
    """``FluxPipeline(**parts)`` (no ``_class_name`` anywhere), seeds drawn as the pipeline draws
    them (unpacked, then packed), the default T5 length (512), latents in the pipeline's layout."""
    pipe = tiny_flux_pipeline()
    pipe.set_progress_bar_config(disable=True)
    assert pipe.scheduler.config.get("_class_name") is None
    ref = pipe(
        PROMPTS,
        generator=[torch.Generator().manual_seed(s) for s in (11, 12)],
        height=SIZE,
        width=SIZE,
        guidance_scale=3.5,
        num_inference_steps=4,
        output_type="latent",
    ).images
    ours = generate(
        pipe,
        PROMPTS,
        sampler=Standard(guidance=3.5),
        steps=4,
        seed=11,
        height=SIZE,
        width=SIZE,
        output_type="latent",
    )
    assert isinstance(ours, Tensor)
    assert relative(ours, ref) <= RTOL
    images = generate(
        pipe,
        PROMPTS[0],
        sampler=Zigzag(guidance=3.5, inversion_guidance=1.0),
        steps=3,
        height=SIZE,
        width=SIZE,
    )
    assert isinstance(images, list) and images[0].size == (SIZE, SIZE)


def test_clear_errors(tmp_path: Path) -> None:
    pipe = tiny_flux_pipeline()
    with pytest.raises(InvalidArgument, match="height = 30 is invalid: a multiple of 4"):
        FluxModel(pipe, height=30, width=SIZE)
    (tmp_path / "model_index.json").write_text('{"_class_name": "StableDiffusion3Pipeline"}')
    with pytest.raises(InvalidArgument, match="FluxPipeline"):
        FluxAdapter(path=str(tmp_path)).load()


CONFIG = """
[model]
use = "flux"
path = "{path}"
height = 32
width = 32
max_sequence_length = 32

[schedule]
use = "flow-match"
steps = 4

[sampler]
use = "asymmetry-zigzag"
guidance = 3.5
zag_prompt = "a dog"

[guider]
use = "true-cfg"
true_cfg_scale = 2.0

[run]
prompts = ["a red cube"]
negative_prompt = "blurry"
seeds = [7]
output = "{out}"
"""


def test_a_config_runs_flux_with_a_zag_prompt_and_true_cfg(tmp_path: Path) -> None:
    """``zsampling run`` on a FLUX folder: what ``sample()`` makes with the same components."""
    from PIL import Image
    from typer.testing import CliRunner

    from zsampling.cli import app

    folder = write_tiny_flow_pipeline(tmp_path / "flux", "flux")
    config = tmp_path / "run.toml"
    config.write_text(CONFIG.format(path=folder, out=tmp_path / "out"), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(config)])
    assert result.exit_code == 0, result.output
    (written,) = (tmp_path / "out").glob("*.png")
    model = FluxAdapter(path=str(folder), height=SIZE, width=SIZE, max_sequence_length=TOKENS)
    loaded = model.load()
    run = sample(
        loaded,
        AsymmetryZigzag(guidance=3.5, zag_prompt="a dog"),
        prompts=["a red cube"],
        negative_prompts=["blurry"],
        seeds=[7],
        schedule=FlowMatch(steps=4),
        guider=TrueCFG(true_cfg_scale=2.0),
    )
    expected = loaded.decode(run.latents)[0]
    with Image.open(written) as image:
        assert image.size == (SIZE, SIZE)
        assert np.array_equal(np.asarray(image.convert("RGB")), np.asarray(expected))
