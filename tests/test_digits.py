"""The embedded digits model: training, the shipped weights' quality, the judge, the loader."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from zsampling import Standard, Uniform, Zigzag, sample
from zsampling.adapters.digits import PACKAGED, DigitsAdapter
from zsampling.core.errors import InvalidArgument
from zsampling.digits.data import CLASSES, held_out_halves, splits
from zsampling.digits.judge import judge
from zsampling.digits.train import train
from zsampling.metrics.sets import ClassSets, set_scores


def test_judge_is_accurate_on_held_out_digits() -> None:
    assert judge().accuracy >= 0.95
    train_split, test_split = splits()
    assert len(set(train_split.labels.tolist())) == 10
    assert len(train_split.labels) + len(test_split.labels) == 1797


def test_training_reduces_the_loss(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    losses = train(tmp_path / "m", seconds=120, max_steps=60, batch_size=32)
    assert len(losses) == 60
    assert np.mean(losses[-15:]) < 0.6 * np.mean(losses[:5]), losses
    loaded = DigitsAdapter(path=str(tmp_path / "m")).load()
    assert loaded.latent_shape() == (1, 8, 8)
    weak = DigitsAdapter(path=str(tmp_path / "m"), weak=True).load()  # the 25% checkpoint
    assert weak.latent_shape() == (1, 8, 8)


def test_training_the_pairs_model_mostly_on_twins(tmp_path: Path) -> None:
    """With slots=2 the canvas is 8x16 and 85% of the training pairs are twins."""
    from zsampling.adapters.digits import DigitPairsAdapter
    from zsampling.digits.data import NULL_CLASS
    from zsampling.digits.train import draw_batch

    images, labels = draw_batch(splits()[0], 4000, 2, 0.85, torch.Generator().manual_seed(0))
    assert images.shape == (4000, 1, 8, 16)
    kept = labels[:, 0] != NULL_CLASS
    twins = float((labels[kept, 0] == labels[kept, 1]).float().mean())
    assert twins == pytest.approx(0.85 + 0.15 / 10, abs=0.02)  # + random coincidences
    losses = train(tmp_path / "p", slots=2, twins=0.85, seconds=120, max_steps=20, batch_size=16)
    assert len(losses) == 20
    model = DigitPairsAdapter(path=str(tmp_path / "p")).load()
    assert model.latent_shape() == (1, 8, 16) and model.slots == 2


@pytest.fixture(scope="module")
def shipped():  # type: ignore[no-untyped-def]
    return DigitsAdapter().load()


def test_shipped_weights_are_safetensors_and_small() -> None:
    files = {p.name for p in (PACKAGED / "unet").iterdir()}
    assert "diffusion_pytorch_model.safetensors" in files
    assert not any(name.endswith((".bin", ".pt", ".ckpt")) for name in files)
    assert (PACKAGED / "unet" / "diffusion_pytorch_model.safetensors").stat().st_size < 4_000_000


def test_shipped_model_draws_the_requested_digits(shipped) -> None:  # type: ignore[no-untyped-def]
    prompts = [c for c in CLASSES for _ in range(10)]
    res = sample(
        shipped,
        Standard(guidance=3.0),
        prompts=prompts,
        seeds=range(100),
        schedule=Uniform(steps=25),
    )
    probs = judge().probabilities(res.latents.clamp(-1, 1))
    labels = np.repeat(np.arange(10), 10)
    accuracy = float((probs.argmax(1) == labels).mean())
    assert accuracy >= 0.8, accuracy
    # at guidance 1 (the model's own conditional), as a set, far closer to held-out real digits
    # than uniform noise is
    own = sample(shipped, Standard(guidance=1.0), prompts=prompts, seeds=range(100),
                 schedule=Uniform(steps=25))
    reference = held_out_halves()[0]
    names = [str(int(c)) for c in reference.labels]
    ref = ClassSets.group(judge().features(reference.images), names)
    made = ClassSets.group(judge().features(own.latents.clamp(-1, 1)), prompts)
    noise = ClassSets.group(judge().features(torch.rand(100, 1, 8, 8) * 2 - 1), prompts)
    assert set_scores(made, ref, 9)["energy"] < 0.05 * set_scores(noise, ref, 9)["energy"]


def test_zigzag_on_digits_is_counted_and_differs(shipped) -> None:  # type: ignore[no-untyped-def]
    kw = dict(prompts=["3", "eight"], seeds=[0, 1], schedule=Uniform(steps=10))
    std = sample(shipped, Standard(guidance=3.0), **kw)  # type: ignore[arg-type]
    zig = sample(shipped, Zigzag(guidance=3.0), **kw)  # type: ignore[arg-type]
    assert zig.counter.guided_calls == 3 * 10 - 2
    assert (zig.latents - std.latents).abs().max() > 1e-2


def test_bad_prompt_names_valid_digits(shipped) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidArgument, match=r"prompt = 'cat' .*a digit: 0, 1"):
        sample(shipped, Standard(), prompts=["cat"], schedule=Uniform(steps=2))


def test_missing_or_corrupt_model_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"model\.path = .*unet/ \(UNet2DModel"):
        DigitsAdapter(path=str(tmp_path)).load()
    broken = tmp_path / "broken"
    shutil.copytree(PACKAGED, broken)
    weights = broken / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(InvalidArgument, match=r"loading failed"):
        DigitsAdapter(path=str(broken)).load()
    (broken / "unet" / "config.json").write_text("{not json")
    with pytest.raises(InvalidArgument, match=r"loading failed"):
        DigitsAdapter(path=str(broken)).load()
