"""Patches on a diffusers model: ``unet-weights`` (Diffusion-DPO style) and ``lora``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from tiny_pipelines import latents_noise, load_tiny, tiny_sd_unet, write_tiny_unet

from zsampling.adapters.analytic import AnalyticModel
from zsampling.adapters.diffusers import DiffusersModel
from zsampling.core.errors import InvalidArgument
from zsampling.patches import Lora, UNetWeights
from zsampling.patches import lora as lora_module

pytestmark = pytest.mark.usefixtures("single_thread")

LEVEL = torch.tensor([2.0], dtype=torch.float64)


def eps_of(model: DiffusersModel, cond: dict[str, torch.Tensor]) -> torch.Tensor:
    return model.predict(latents_noise([0]), LEVEL, cond).eps


def direct_eps(unet: Any, model: DiffusersModel, cond: dict[str, torch.Tensor]) -> torch.Tensor:
    """What ``unet`` itself predicts at LEVEL (no adapter code)."""
    t = model.table.timestep(LEVEL).float()  # type: ignore[union-attr]
    with torch.no_grad():
        return unet(
            latents_noise([0]), t, encoder_hidden_states=cond["encoder_hidden_states"]
        ).sample  # type: ignore[no-any-return]


def test_unet_weights_swaps_the_unet_and_keeps_the_original(
    tiny_sd: DiffusersModel, tmp_path: Path
) -> None:
    folder = write_tiny_unet(tmp_path / "dpo-unet", "sd", seed=1)
    cond, _ = tiny_sd.encode(["a cat"])
    before = eps_of(tiny_sd, cond)
    patched = UNetWeights(path=str(folder)).apply(tiny_sd)
    assert isinstance(patched, DiffusersModel) and patched is not tiny_sd
    torch.testing.assert_close(eps_of(patched, cond), direct_eps(tiny_sd_unet(1), tiny_sd, cond))
    assert float((eps_of(patched, cond) - before).abs().max()) > 1e-2
    torch.testing.assert_close(eps_of(tiny_sd, cond), before, rtol=0, atol=0)  # untouched
    assert patched.pipeline.text_encoder is tiny_sd.pipeline.text_encoder  # shared, not copied


def test_unet_weights_from_a_pipeline_subfolder(tiny_sd: DiffusersModel, tiny_sd_dir: Path) -> None:
    patched = UNetWeights(path=str(tiny_sd_dir), subfolder="unet").apply(tiny_sd)
    cond, _ = tiny_sd.encode(["a"])
    torch.testing.assert_close(eps_of(patched, cond), eps_of(tiny_sd, cond), rtol=0, atol=0)


def test_unet_weights_refuses_pickle_unless_opted_in(
    tiny_sd: DiffusersModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_tiny_unet(tmp_path / "bin-unet", "sd", safetensors=False)
    with pytest.raises(InvalidArgument, match=r"only pickle \(.bin\) weights.*allow_pickle"):
        UNetWeights(path=str(folder)).apply(tiny_sd)

    # Opted in, diffusers must load with weights_only=True. We stop at torch.load (nothing is
    # unpickled) and check the arguments it was given.
    calls: list[dict[str, Any]] = []

    class Stop(BaseException):  # not an Exception: diffusers re-wraps those as OSError
        pass

    def recording_load(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        raise Stop

    monkeypatch.setattr(torch, "load", recording_load)
    with pytest.raises(Stop):
        UNetWeights(path=str(folder), allow_pickle=True).apply(tiny_sd)
    assert calls and calls[0].get("weights_only") is True


def test_unet_weights_errors(
    tiny_sd: DiffusersModel, tmp_path: Path, analytic: AnalyticModel
) -> None:
    with pytest.raises(InvalidArgument, match=r"patches.unet-weights.path.*config.json"):
        UNetWeights(path=str(tmp_path / "missing")).apply(tiny_sd)
    sdxl_unet = write_tiny_unet(tmp_path / "xl", "sdxl")
    with pytest.raises(InvalidArgument, match=r"a UNet for this model.*cross_attention_dim"):
        UNetWeights(path=str(sdxl_unet)).apply(tiny_sd)
    with pytest.raises(InvalidArgument, match=r"patches.unet-weights = 'AnalyticModel'"):
        UNetWeights(path=str(sdxl_unet)).apply(analytic)


def write_tiny_lora(folder: Path) -> tuple[Path, Any]:
    """A random LoRA on the tiny SD UNet's attention, saved as diffusers saves LoRAs."""
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = tiny_sd_unet(0)
    torch.manual_seed(5)
    config = LoraConfig(
        r=4,
        lora_alpha=4,
        target_modules=["to_q", "to_k", "to_v", "to_out.0"],
        init_lora_weights=False,  # random B: the LoRA changes the output
    )
    unet.add_adapter(config)
    StableDiffusionPipeline.save_lora_weights(
        str(folder), unet_lora_layers=get_peft_model_state_dict(unet), safe_serialization=True
    )
    return folder / "pytorch_lora_weights.safetensors", unet


def test_lora_matches_the_peft_unet(tiny_sd_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("peft")
    model = load_tiny(tiny_sd_dir)  # its own copy: the LoRA is loaded in place
    cond, _ = model.encode(["a cat"])
    before = eps_of(model, cond)
    lora_file, lora_unet = write_tiny_lora(tmp_path)
    patched = Lora(path=str(lora_file)).apply(model)
    assert patched is model
    after = eps_of(patched, cond)
    assert float((after - before).abs().max()) > 1e-3
    torch.testing.assert_close(after, direct_eps(lora_unet, model, cond), rtol=0, atol=1e-5)


def test_lora_without_peft_says_how_to_install(
    tiny_sd: DiffusersModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lora_module, "peft_available", lambda: False)
    with pytest.raises(
        InvalidArgument, match=r"needs the optional 'peft' package: pip install peft"
    ):
        Lora(path=str(tmp_path)).apply(tiny_sd)


def test_lora_path_errors(tiny_sd: DiffusersModel, tmp_path: Path) -> None:
    pytest.importorskip("peft")
    with pytest.raises(InvalidArgument, match=r"patches.lora.path.*existing local"):
        Lora(path=str(tmp_path / "missing.safetensors")).apply(tiny_sd)
    pickle_file = tmp_path / "lora.bin"
    pickle_file.write_bytes(b"")
    with pytest.raises(InvalidArgument, match=r"weight_name = 'lora.bin'.*pickle is refused"):
        Lora(path=str(pickle_file)).apply(tiny_sd)


def test_patched_and_base_models_in_one_w2sd_run(tiny_sd: DiffusersModel, tmp_path: Path) -> None:
    """W2SD with the base UNet as the weak model and the swapped-in UNet as the strong one."""
    from zsampling import W2SD, TrajectoryRecorder, Uniform, Zigzag, sample

    strong = UNetWeights(path=str(write_tiny_unet(tmp_path / "strong", "sd", seed=1))).apply(
        tiny_sd
    )
    rec = TrajectoryRecorder()
    kw: dict[str, Any] = dict(prompts=["a cat"], seeds=[0], schedule=Uniform(steps=4))
    w2sd = sample(strong, W2SD(guidance=3.0), extra_models={"weak": tiny_sd}, observers=[rec], **kw)
    assert [e.model for e in rec.events if e.kind == "invert"] == ["weak"] * 3
    same_model = sample(strong, W2SD(guidance=3.0), extra_models={"weak": strong}, **kw)
    # same model on both sides = Z-Sampling at equal guidances: the weak UNet really is used
    assert float((w2sd.latents - same_model.latents).abs().max()) > 1e-3
    zig = sample(strong, Zigzag(guidance=3.0, inversion_guidance=3.0, inversion="source"), **kw)
    torch.testing.assert_close(same_model.latents, zig.latents, rtol=0, atol=1e-5)
