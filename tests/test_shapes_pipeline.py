"""The shipped shapes pipeline: a real StableDiffusionPipeline folder, loaded offline, driven by
zsampling's diffusers adapter and generate(), read back by the exact judge; its training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from zsampling import Zigzag
from zsampling.adapters.shapes import PACKAGED, ShapesAdapter
from zsampling.core.errors import InvalidArgument
from zsampling.integrations.diffusers import generate
from zsampling.shapes.judge import judge
from zsampling.shapes.pipeline import vocabulary
from zsampling.shapes.train import Recipe, train


@pytest.fixture(scope="module")
def pipe():  # type: ignore[no-untyped-def]
    from diffusers import StableDiffusionPipeline

    loaded = StableDiffusionPipeline.from_pretrained(PACKAGED, local_files_only=True)
    loaded.set_progress_bar_config(disable=True)
    return loaded


def test_the_shipped_folder_is_small_safetensors_and_loads_offline(pipe) -> None:  # type: ignore[no-untyped-def]
    files = [p for p in PACKAGED.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 4 * 2**20
    assert not [p for p in files if p.suffix in (".bin", ".pt", ".ckpt")]
    assert (PACKAGED / "weak" / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert type(pipe).__name__ == "StableDiffusionPipeline" and pipe.vae_scale_factor == 2
    assert pipe.unet.dtype == torch.float32 and pipe.text_encoder.dtype == torch.float32
    blocks = pipe.unet.mid_block.attentions[0].transformer_blocks[0]
    assert blocks.attn1.is_cross_attention is False and blocks.attn2.is_cross_attention is True


def test_the_tokenizer_loads_as_transformers_saves_it() -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(PACKAGED / "tokenizer", local_files_only=True)
    ids = tok("A red circle left of a blue square").input_ids
    words = ["a", "red", "circle", "left", "of", "a", "blue", "square"]
    vocab = vocabulary()
    assert ids == [vocab["<|startoftext|>"], *(vocab[w] for w in words), vocab["<|endoftext|>"]]


def test_generate_with_zigzag_gives_an_image_the_judge_reads(pipe) -> None:  # type: ignore[no-untyped-def]
    prompt = "a red circle left of a blue square"
    images = generate(pipe, [prompt] * 4, sampler=Zigzag(guidance=3.0), steps=10, seed=0)
    assert [im.size for im in images] == [(32, 32)] * 4
    verdicts = [judge(np.asarray(im.convert("RGB")), prompt) for im in images]
    # every image holds objects the judge reads, in the two colours the prompt names (the shipped
    # model is weak at shapes and relations: docs/shapes.md)
    assert all({"red", "blue"} <= {s.colour for s in v.seen} for v in verdicts)


def test_the_adapter_loads_the_weak_unet_beside_the_same_parts() -> None:
    strong, weak = ShapesAdapter().load(), ShapesAdapter(weak=True).load()
    assert strong.latent_shape() == weak.latent_shape() == (4, 16, 16)
    assert weak.pipeline.vae is not None and weak.pipeline.unet is not strong.pipeline.unet
    a = dict(strong.pipeline.unet.named_parameters())["conv_in.weight"]
    b = dict(weak.pipeline.unet.named_parameters())["conv_in.weight"]
    assert not torch.equal(a, b)


def test_a_folder_without_a_weak_unet_is_named(tmp_path: Path) -> None:
    problem = ShapesAdapter(path=str(tmp_path), weak=True).folder_problem()
    assert problem is not None and "model_index.json" in problem and "weak/unet" in problem
    with pytest.raises(InvalidArgument, match=r"model\.path"):
        ShapesAdapter(path=str(tmp_path)).load()


def test_training_is_deterministic_from_its_seed(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    tiny = Recipe(vae_steps=3, vae_batch=8, unet_steps=4, unet_batch=8, train_images=40)
    records = [train(tmp_path / name, tiny) for name in ("a", "b")]
    assert records[0]["unet_steps_done"] == 4 and not records[0]["cut_by_time_limit"]
    for part in (
        "unet/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
        "weak/unet/diffusion_pytorch_model.safetensors",
        "text_encoder/model.safetensors",
    ):
        assert (tmp_path / "a" / part).read_bytes() == (tmp_path / "b" / part).read_bytes(), part
    loaded = ShapesAdapter(path=str(tmp_path / "a")).load()
    assert loaded.latent_shape() == (4, 16, 16)
    assert json.loads((tmp_path / "a" / "training.json").read_text())["recipe"]["seed"] == 0


@pytest.mark.slow
def test_retraining_gives_the_shipped_verdicts(tmp_path: Path) -> None:
    """`zsampling train-shapes` at its defaults (about 30 CPU minutes) gives weights whose
    testbed verdicts (standard sampling at the testbed's guidance, every item) are the shipped
    weights' verdicts."""
    from zsampling import Standard
    from zsampling.evaluation.frontier import run_arm
    from zsampling.evaluation.testbeds import TESTBEDS

    torch.set_num_threads(1)
    record = train(tmp_path / "m", Recipe())
    assert not record["cut_by_time_limit"]

    def verdicts(folder: Path) -> np.ndarray:
        bed = TESTBEDS["shapes"]()
        bed.load = lambda: ShapesAdapter(path=str(folder)).load()
        arm = run_arm(bed, "s", "s", "cfg", Standard(guidance=bed.guidance))
        return np.stack([arm.stats["accuracy"], arm.stats["logp"]])

    assert np.array_equal(verdicts(tmp_path / "m"), verdicts(PACKAGED))
