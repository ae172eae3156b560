"""CLIP score from a local folder, tested with a tiny random CLIP built offline."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

from zsampling import Standard, Uniform, sample
from zsampling.adapters.digits import DigitsAdapter
from zsampling.core.errors import InvalidArgument
from zsampling.metrics.clip import ClipScore
from zsampling.testing.tiny import tiny_tokenizer


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.eos_token_id,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=16,
    )
    folder = tmp_path_factory.mktemp("tiny-clip")
    CLIPModel(config).eval().save_pretrained(folder, safe_serialization=True)
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def test_clip_score_matches_transformers(tiny_clip: Path) -> None:
    model = DigitsAdapter().load()
    res = sample(
        model, Standard(guidance=2.0), prompts=["3", "7"], seeds=[0, 1], schedule=Uniform(steps=4)
    )
    ours = ClipScore(path=str(tiny_clip)).score(model, res.latents, ["3", "7"])
    clip = CLIPModel.from_pretrained(tiny_clip).eval()
    processor = CLIPProcessor.from_pretrained(tiny_clip)
    images = [im.convert("RGB") for im in model.decode(res.latents)]
    inputs = processor(text=["3", "7"], images=images, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = clip(**inputs)
    expected = 100 * torch.nn.functional.cosine_similarity(
        out.image_embeds, out.text_embeds, dim=-1
    ).clamp(min=0)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-4)
    assert ours.shape == (2,)


def test_clip_score_errors(tiny_clip: Path, tmp_path: Path) -> None:
    from zsampling.adapters.analytic import AnalyticModel, demo_mixture

    with pytest.raises(InvalidArgument, match="needs decoded images"):
        ClipScore(path=str(tiny_clip)).score(
            AnalyticModel(demo_mixture()), torch.zeros(1, 2), ["red"]
        )
    with pytest.raises(InvalidArgument, match=r"metrics\.path = .*a local CLIP folder"):
        ClipScore(path=str(tmp_path / "none")).score(
            DigitsAdapter().load(), torch.zeros(1, 1, 8, 8), ["1"]
        )


def test_clip_verifier_scores_as_the_clip_score_metric(tiny_clip: Path) -> None:
    from zsampling.verifiers.clip import ClipVerifier

    model = DigitsAdapter().load()
    res = sample(
        model, Standard(guidance=2.0), prompts=["3", "7"], seeds=[0, 1], schedule=Uniform(steps=4)
    )
    metric = ClipScore(path=str(tiny_clip)).score(model, res.latents, ["3", "7"])
    verifier = ClipVerifier(path=str(tiny_clip)).score(model, res.latents, ["3", "7"])
    assert torch.equal(verifier, metric)
    with pytest.raises(InvalidArgument, match=r"search\.verifier\.path = .*a local CLIP folder"):
        ClipVerifier(path="/nonexistent/clip").score(model, res.latents, ["3", "7"])
