"""Conditioning per call: a path move may use another prompt's conditioning (or none).

The analytic mixture's prompts are class names, so which conditioning reached the model is
visible in the labels it was called with, and the exact model makes the restated loops exact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from pydantic import BaseModel
from safetensors.torch import load_file
from typer.testing import CliRunner

from zsampling import CFG, DDIM, SamplingPath, Uniform, Zigzag, initial_noise, sample
from zsampling.adapters.analytic import AnalyticModel
from zsampling.cli import app
from zsampling.core.errors import ComponentFault, InvalidArgument
from zsampling.core.prediction import Prediction
from zsampling.samplers import AsymmetryZigzag

RUN: dict[str, Any] = {"prompts": ["red", "green"], "seeds": [3, 4], "schedule": Uniform(steps=6)}


class LabelSpy:
    """Records the conditional labels of every call (the second half of a batched call)."""

    def __init__(self, model: AnalyticModel) -> None:
        self.model = model
        self.labels: list[list[int]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def predict(self, x: torch.Tensor, sigma: torch.Tensor, cond: Any) -> Prediction:
        self.labels.append(cond["label"][-x.shape[0] // 2 :].tolist())
        return self.model.predict(x, sigma, cond)


def test_asymmetry_zigzag_with_the_prompt_as_zag_prompt_is_zigzag(analytic: AnalyticModel) -> None:
    """``zag_prompt = "{prompt}"``: every zag uses the item's own prompt, i.e. plain zigzag, bit
    for bit, at the same cost (the variant is encoded, never evaluated twice)."""
    for inversion in ("source", "official"):
        zig = Zigzag(guidance=3.0, inversion_guidance=1.5, inversion=inversion)
        asym = AsymmetryZigzag(
            guidance=3.0, inversion_guidance=1.5, inversion=inversion, zag_prompt="{prompt}"
        )
        a, b = sample(analytic, zig, **RUN), sample(analytic, asym, **RUN)
        assert torch.equal(a.latents, b.latents)
        assert a.counter.as_dict() == b.counter.as_dict()


def test_the_zag_uses_the_zag_prompt_and_equals_the_restated_loop(
    analytic: AnalyticModel,
) -> None:
    """Every zag's positive branch is the zag prompt ("blue"), every zig's the item's prompt;
    the result is the zigzag loop written with two guiders, one per prompt."""
    spy = LabelSpy(analytic)
    asym = AsymmetryZigzag(guidance=3.0, zag_prompt="blue")  # inversion_guidance: = guidance
    ours = sample(spy, asym, **RUN)  # type: ignore[arg-type]
    red, green, blue = 0, 1, 2
    steps = 6
    expected: list[list[int]] = []
    for i in range(steps):
        expected.append([red, green])  # zig
        if i < steps - 1:
            expected += [[blue, blue], [red, green]]  # zag, zig again
    assert spy.labels == expected

    cond, uncond = analytic.encode(RUN["prompts"])
    zag_cond, _ = analytic.encode(["blue", "blue"])
    sigmas = Uniform(steps=steps).sigmas(analytic)
    main = SamplingPath(
        sigmas, analytic.process, {"main": CFG().bind(analytic, cond, uncond)}, DDIM()
    )
    zag = SamplingPath(
        sigmas, analytic.process, {"main": CFG().bind(analytic, zag_cond, uncond)}, DDIM()
    )
    x = initial_noise(analytic.latent_shape(), RUN["seeds"])[0]
    for i in range(steps):
        x_next = main.denoise(x, i, 3.0)
        if i < steps - 1:
            x = zag.invert(x_next, i, 3.0)
            x_next = main.denoise(x, i, 3.0)
        x = x_next
    torch.testing.assert_close(ours.latents, x, rtol=0, atol=1e-6)
    plain = sample(analytic, Zigzag(guidance=3.0, inversion_guidance=3.0), **RUN)
    assert float((plain.latents - ours.latents).abs().max()) > 1e-3


def test_a_template_zag_prompt_is_filled_per_item() -> None:
    asym = AsymmetryZigzag(zag_prompt="a photo of {prompt}, watercolor")
    assert asym.conditionings(["a cat", "two dogs"]) == {
        "zag": ["a photo of a cat, watercolor", "a photo of two dogs, watercolor"]
    }
    assert AsymmetryZigzag(zag_prompt="").conditionings(["x"]) == {"zag": [""]}


class Unbatched(BaseModel):
    """A guider on the bare protocol (not a GuidanceRule): bound once per conditioning."""

    name: ClassVar[str] = "unbatched"

    def bind(self, model: Any, cond: Any, uncond: Any, counter: Any = None) -> Any:
        def guider(x: torch.Tensor, sigma: float, scale: float, context: Any = None) -> Prediction:
            levels = torch.full((x.shape[0],), sigma, dtype=torch.float64)
            return model.predict(x, levels, uncond).guided(model.predict(x, levels, cond), scale)

        return guider


def test_a_guider_not_built_on_the_rule_base_is_routed_per_conditioning(
    analytic: AnalyticModel,
) -> None:
    asym = AsymmetryZigzag(guidance=3.0, inversion_guidance=2.0, zag_prompt="blue")
    plain = sample(analytic, asym, guider=Unbatched(), **RUN)  # type: ignore[arg-type]
    rule = sample(analytic, asym, **RUN)
    torch.testing.assert_close(plain.latents, rule.latents, rtol=0, atol=1e-6)
    assert plain.counter.guided_calls == rule.counter.guided_calls == 6 + 2 * 5


def test_a_move_may_be_unconditional(analytic: AnalyticModel) -> None:
    """``conditioning="uncond"`` (no prompt) works through the run's guider as well."""

    class UncondZag(Zigzag):
        name: ClassVar[str] = "uncond-zag"

        def sample(self, x: torch.Tensor, path: SamplingPath) -> torch.Tensor:
            for i in range(path.steps):
                x_next = path.denoise(x, i, self.guidance)
                if i < path.steps - 1:
                    x = path.invert(x_next, i, 1.0, conditioning="uncond")
                    x_next = path.denoise(x, i, self.guidance)
                x = x_next
            return x

    ours = sample(analytic, UncondZag(guidance=3.0), **RUN)
    zig = sample(analytic, Zigzag(guidance=3.0, inversion_guidance=0.0), **RUN)
    torch.testing.assert_close(ours.latents, zig.latents, rtol=0, atol=1e-6)


class BadVariants(Zigzag):
    name: ClassVar[str] = "bad-variants"
    answer: Any = None

    def conditionings(self, prompts: list[str]) -> Any:
        return self.answer


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"cond": ["red", "red"]}, "named 'cond'; names must be non-empty strings other than"),
        ({"zag": ["red"]}, "conditionings()['zag'] must be one prompt (str) per item of the batch"),
        (["red"], "conditionings() returned list, not a dict"),
    ],
)
def test_bad_prompt_variants_name_the_sampler(
    analytic: AnalyticModel, answer: Any, message: str
) -> None:
    with pytest.raises(ComponentFault, match=r"sampler 'bad-variants' ") as info:
        sample(analytic, BadVariants(answer=answer), **RUN)
    assert message in str(info.value)


def test_variants_need_prompts(analytic: AnalyticModel) -> None:
    cond, uncond = analytic.encode(RUN["prompts"])
    with pytest.raises(InvalidArgument, match="sampler 'asymmetry-zigzag' conditions some moves"):
        sample(
            analytic,
            AsymmetryZigzag(zag_prompt="blue"),
            conditioning=(cond, uncond),
            seeds=RUN["seeds"],
            schedule=Uniform(steps=4),
        )


CONFIG = """
[model]
use = "analytic"
[schedule]
use = "uniform"
steps = 6
[sampler]
use = "asymmetry-zigzag"
guidance = 3.0
zag_prompt = "blue"
[run]
prompts = ["red"]
seeds = [3]
output = "{out}"
"""


def test_a_config_gives_the_zag_prompt(tmp_path: Path, analytic: AnalyticModel) -> None:
    """``zag_prompt`` in the ``[sampler]`` table: ``zsampling run`` writes what sample() makes."""
    path = tmp_path / "run.toml"
    path.write_text(CONFIG.format(out=tmp_path / "out"), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 0, result.output
    (written,) = (tmp_path / "out").glob("red-*.safetensors")
    latents = next(iter(load_file(str(written)).values()))
    ours = sample(
        analytic,
        AsymmetryZigzag(guidance=3.0, zag_prompt="blue"),
        prompts=["red"],
        seeds=[3],
        schedule=Uniform(steps=6),
    )
    torch.testing.assert_close(latents.reshape(ours.latents.shape), ours.latents)
