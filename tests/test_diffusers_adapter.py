"""The diffusers adapter: loading, clear errors, conditioning, predictions, decoding, fp16 guard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from pydantic import BaseModel, ValidationError
from tiny_pipelines import latents_noise, load_tiny, write_tiny_unet

from zsampling import NonFiniteLatents, Uniform, Zigzag, sample
from zsampling.adapters.diffusers import DiffusersAdapter, DiffusersModel
from zsampling.core.errors import InvalidArgument
from zsampling.core.levels import Process
from zsampling.core.model import ModelAdapter
from zsampling.integrations.diffusers import generate
from zsampling.patches import Lora, UNetWeights
from zsampling.schedules.ays import AlignYourSteps
from zsampling.schedules.diffusers import Scheduler

pytestmark = pytest.mark.usefixtures("single_thread")


def test_loaded_model_is_a_model_adapter(
    tiny_sd: DiffusersModel, tiny_sdxl: DiffusersModel
) -> None:
    for model in (tiny_sd, tiny_sdxl):
        assert isinstance(model, ModelAdapter)
        assert model.latent_shape() == (4, 16, 16)
        assert model.table is not None
        # the scheduler's own tensor, not a copy: levels are bit-identical to diffusers'
        assert model.table.alphas_cumprod is model.pipeline.scheduler.alphas_cumprod
        assert model.table.steps_offset == 1 and model.table.set_alpha_to_one is False
    assert (tiny_sd.family, tiny_sdxl.family) == ("sd", "sdxl")


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"model.path = .*nope.* an existing local"):
        DiffusersAdapter(path=str(tmp_path / "nope")).load()


def test_unet_folder_is_not_a_pipeline(tmp_path: Path) -> None:
    folder = write_tiny_unet(tmp_path / "unet")
    with pytest.raises(InvalidArgument, match=r"model_index.json is missing.*unet-weights"):
        DiffusersAdapter(path=str(folder)).load()


def test_wrong_pipeline_class(tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    with pytest.raises(InvalidArgument) as err:
        DiffusersAdapter(path=str(tmp_path)).load()
    msg = str(err.value)
    assert "model.path" in msg and "FluxPipeline" in msg and "StableDiffusionXLPipeline" in msg


def test_pickle_pipeline_is_refused(tiny_sd: DiffusersModel, tmp_path: Path) -> None:
    tiny_sd.pipeline.save_pretrained(str(tmp_path), safe_serialization=False)
    assert (tmp_path / "unet" / "diffusion_pytorch_model.bin").is_file()
    with pytest.raises(InvalidArgument, match=r"model.path.*safetensors.*pickle .bin .*refused"):
        DiffusersAdapter(path=str(tmp_path)).load()


def test_wrapping_something_else() -> None:
    with pytest.raises(InvalidArgument, match=r"pipeline = 'object'.*StableDiffusionPipeline"):
        DiffusersModel(object())


@pytest.mark.parametrize(
    ("component", "name"),
    [
        (DiffusersAdapter, "diffusers"),
        (UNetWeights, "unet-weights"),
        (Lora, "lora"),
        (AlignYourSteps, "align-your-steps"),
        (Scheduler, "scheduler"),
    ],
)
def test_components_follow_the_convention(component: type[BaseModel], name: str) -> None:
    assert component.name == name  # type: ignore[attr-defined]
    assert component.model_config.get("extra") == "forbid"
    assert component.model_config.get("frozen") is True
    for field_name, field in component.model_fields.items():
        assert field.description, field_name


def test_component_fields_are_validated() -> None:
    with pytest.raises(ValidationError, match="dtyp"):
        DiffusersAdapter(path="x", dtyp="float16")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="float32"):
        DiffusersAdapter(path="x", dtype="float64")  # type: ignore[arg-type]
    assert issubclass(DiffusersAdapter, BaseModel)


def test_sdxl_conditioning_carries_added_embeddings(tiny_sdxl: DiffusersModel) -> None:
    cond, uncond = tiny_sdxl.encode(["a", "b", "c"])
    assert set(cond) == set(uncond) == {"encoder_hidden_states", "text_embeds", "time_ids"}
    assert all(v.shape[0] == 3 for v in [*cond.values(), *uncond.values()])
    assert cond["time_ids"][0].tolist() == [32, 32, 0, 0, 32, 32]  # original, crop, target
    # SDXL's force_zeros_for_empty_prompt: no negative prompt means a zero unconditional branch
    assert not uncond["encoder_hidden_states"].any() and not uncond["text_embeds"].any()
    negative, _ = tiny_sdxl.encode(["a"], ["blurry"])
    assert negative["encoder_hidden_states"].shape == (1, 77, 64)
    with pytest.raises(InvalidArgument, match="one negative prompt per prompt"):
        tiny_sdxl.encode(["a", "b"], ["blurry"])


@pytest.mark.parametrize("fixture", ["tiny_sd", "tiny_sdv"])
def test_prediction_is_a_consistent_pair(fixture: str, request: pytest.FixtureRequest) -> None:
    """``x = alpha x0 + s eps`` at the evaluated level, for epsilon and v networks alike."""
    model: DiffusersModel = request.getfixturevalue(fixture)
    cond, _ = model.encode(["a cat"])
    x = latents_noise([0])
    for sigma in (0.5, 3.0, 14.0):
        level = torch.tensor([sigma], dtype=torch.float64)
        pred = model.predict(x, level, cond)
        assert pred.x0.dtype == pred.eps.dtype == torch.float32
        alpha, s = Process("vp").coefficients(level)
        rebuilt = alpha * pred.x0.double() + s * pred.eps.double()
        torch.testing.assert_close(rebuilt, x.double(), rtol=0, atol=1e-5 * (1 + sigma))


def test_v_prediction_uses_v_formulas(tiny_sdv: DiffusersModel) -> None:
    cond, _ = tiny_sdv.encode(["a cat"])
    x, level = latents_noise([0]), torch.tensor([2.0], dtype=torch.float64)
    pred = tiny_sdv.predict(x, level, cond)
    t = tiny_sdv.table.timestep(level).float()  # type: ignore[union-attr]
    with torch.no_grad():
        v = tiny_sdv.unet(x, t, encoder_hidden_states=cond["encoder_hidden_states"]).sample
    alpha, s = (c.item() for c in Process("vp").coefficients(level))
    torch.testing.assert_close(pred.eps, s * x + alpha * v, rtol=0, atol=1e-5)


def test_grid_levels_reach_the_unet_as_exact_integers(tiny_sd: DiffusersModel) -> None:
    seen: list[torch.Tensor] = []
    unet = tiny_sd.unet
    original = unet.forward

    def spy(x, t, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(t.clone())
        return original(x, t, *args, **kwargs)

    unet.forward = spy
    try:
        sample(tiny_sd, Zigzag(guidance=2.0), prompts=["a"], schedule=Uniform(steps=4))
    finally:
        del unet.forward
    assert torch.cat(seen).unique().tolist() == [1.0, 251.0, 501.0, 751.0]


def test_decode_gives_pil_images(tiny_sd: DiffusersModel) -> None:
    images = tiny_sd.decode(latents_noise([0, 1]))
    assert [im.size for im in images] == [(32, 32), (32, 32)]
    assert images[0].mode == "RGB"


def test_fp16_sdxl_vae_is_upcast_for_decoding(
    tiny_sdxl_dir: Path, tiny_sdxl: DiffusersModel
) -> None:
    import numpy as np

    half = load_tiny(tiny_sdxl_dir, dtype="float16")
    assert half.pipeline.vae.config.force_upcast
    upcast_dtypes: list[torch.dtype] = []
    half.pipeline.vae.decoder.register_forward_pre_hook(
        lambda module, args: upcast_dtypes.append(args[0].dtype)
    )
    z = latents_noise([0])
    image = np.asarray(half.decode(z)[0], dtype=float)
    assert upcast_dtypes == [torch.float32]  # decoded in float32 ...
    assert half.pipeline.vae.dtype == torch.float16  # ... and cast back afterwards
    reference = np.asarray(tiny_sdxl.decode(z)[0], dtype=float)
    assert np.abs(image - reference).max() <= 2  # fp16-rounded weights: within 2/255


def test_fp16_nonfinite_latents_name_the_fp16_cause(
    tiny_sd_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    half = load_tiny(tiny_sd_dir, dtype="float16")

    def overflowing(x, t, *args, **kwargs):  # type: ignore[no-untyped-def]
        return (torch.full_like(x, float("inf")),)

    monkeypatch.setattr(half.pipeline.unet, "forward", overflowing)
    with pytest.raises(NonFiniteLatents) as err:
        sample(half, Zigzag(), prompts=["a"], seeds=[0], schedule=Uniform(steps=3))
    msg = str(err.value)
    assert "denoise step 0->1" in msg
    assert "fp16" in msg and "SDXL VAE" in msg and "float32 or bfloat16" in msg


def test_generate_two_lines(tiny_sd: DiffusersModel) -> None:
    images = generate(tiny_sd.pipeline, ["a cat", "a dog"], sampler=Zigzag(guidance=3.0), steps=4)
    assert isinstance(images, list) and len(images) == 2
    latents = generate(
        tiny_sd.pipeline, "a cat", sampler=Zigzag(guidance=3.0), steps=4, output_type="latent"
    )
    again = generate(
        tiny_sd.pipeline, "a cat", sampler=Zigzag(guidance=3.0), steps=4, output_type="latent"
    )
    assert isinstance(latents, torch.Tensor) and torch.equal(latents, again)  # seeded
