"""Guidance scales in the sampler contract (`zsampling.core.sampler`): a sampler names its scale
settings in ``scales``, main first, and every place that needs a scale reads them from there,
whatever the setting is called. ``Strength`` below is standard sampling whose scale is called
``strength``: each place must treat it exactly as it treats ``standard``'s ``guidance``; a sampler
with a ``guidance`` field that declares no scale has none (no lookup by name)."""

from __future__ import annotations

import inspect
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
import torch
from hostile import Sandbox, plugin
from pydantic import Field, ValidationError
from test_kdiffusion_functions import LABELS, NULL, AnalyticDenoiser, split_args

from zsampling import W2SD, Karras, Restart, Standard, Zigzag
from zsampling.adapters.analytic import AnalyticModel, demo_mixture
from zsampling.core.component import Component
from zsampling.core.errors import ComponentFault, InvalidArgument
from zsampling.core.path import SamplingPath
from zsampling.core.sampler import guidance_scales, main_scale, scale_fields, with_main_scale
from zsampling.evaluation.evaluate import guidance_of
from zsampling.evaluation.leaderboard import method_specs
from zsampling.integrations.comfyui.widgets import UNSET, settings_from, widgets
from zsampling.integrations.kdiffusion import sample_standard, sampler_function
from zsampling.plugins.manager import build_registry
from zsampling.samplers import AsymmetryZigzag


class Strength(Component):
    """Standard sampling, its scale called ``strength``."""

    name: ClassVar[str] = "strength"
    scales: ClassVar[tuple[str, ...]] = ("strength",)

    strength: float = Field(5.5, ge=0)

    def sample(self, x: torch.Tensor, path: SamplingPath) -> torch.Tensor:
        for i in range(path.steps):
            x = path.denoise(x, i, self.strength)
        return x


class Unscaled(Component):
    """A ``guidance`` field, but no declared scale: it has none."""

    name: ClassVar[str] = "unscaled"

    guidance: float = 5.5

    def sample(self, x: torch.Tensor, path: SamplingPath) -> torch.Tensor:
        return Standard(guidance=self.guidance).sample(x, path)


class Misdeclared(Component):
    name: ClassVar[str] = "misdeclared"
    scales: ClassVar[tuple[str, ...]] = ("guidance", "rounds")

    guidance: float = 1.0
    rounds: str = "two"

    def sample(self, x: torch.Tensor, path: SamplingPath) -> torch.Tensor:
        return x


def test_every_built_in_sampler_declares_its_scales() -> None:
    assert scale_fields(Standard) == scale_fields(Restart) == ("guidance",)
    assert scale_fields(Zigzag) == scale_fields(AsymmetryZigzag)
    assert scale_fields(Zigzag) == ("guidance", "inversion_guidance")
    assert scale_fields(W2SD()) == ("guidance", "weak_guidance")
    assert guidance_scales(W2SD(guidance=4.0)) == {"guidance": 4.0, "weak_guidance": None}
    assert main_scale(Zigzag(guidance=3.0, inversion_guidance=0.5)) == 3.0


def test_the_main_scale_is_replaced_on_a_validated_copy() -> None:
    zz = Zigzag(guidance=3.0, inversion_guidance=0.5, zigzag_steps=2)
    louder = with_main_scale(zz, 7.0)
    assert louder == Zigzag(guidance=7.0, inversion_guidance=0.5, zigzag_steps=2)
    assert zz.guidance == 3.0  # a copy
    assert with_main_scale(Strength(), 2.0) == Strength(strength=2.0)
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        with_main_scale(Standard(), -1.0)


def test_an_undeclared_scale_is_none_and_a_wrong_declaration_is_named() -> None:
    assert scale_fields(Unscaled) == () and main_scale(Unscaled()) is None
    with pytest.raises(InvalidArgument, match=r"sampler = 'unscaled' is invalid.*declares none"):
        with_main_scale(Unscaled(), 2.0)
    with pytest.raises(ComponentFault, match=r"sampler 'misdeclared' declares scales = \("):
        scale_fields(Misdeclared)


def test_the_leaderboard_sweeps_the_declared_scale() -> None:
    registry = build_registry(
        [("scales", plugin(sampler=[Strength, Unscaled]))], entry_points=False
    )
    specs = {s.label: s for s in method_specs(SimpleNamespace(guidance=2.0), registry)}  # type: ignore[arg-type]
    assert specs["strength, g=2"].sampler == Strength(strength=2.0)
    assert specs["strength, g=4"].sampler == Strength(strength=4.0)
    # no declared scale: one arm, at its defaults
    assert specs["unscaled"].sampler == Unscaled()
    assert not [label for label in specs if label.startswith("unscaled,")]


def test_evaluate_compares_at_the_main_scale() -> None:
    assert guidance_of(SimpleNamespace(sampler=Strength(strength=3.5))) == 3.5  # type: ignore[arg-type]
    assert guidance_of(SimpleNamespace(sampler=Unscaled(guidance=9.0))) == Standard().guidance  # type: ignore[arg-type]


def test_the_k_diffusion_function_defaults_the_main_scale_to_cond_scale() -> None:
    """``sample_strength`` is ``sample_standard`` with ``strength`` for ``guidance``: the same
    latents with the scale from ``extra_args["cond_scale"]``, and from the argument."""
    sample_strength = sampler_function(Strength, "sample_strength", "standard, by strength")
    assert inspect.signature(sample_strength).parameters["strength"].default is None
    denoiser = AnalyticDenoiser()
    sigmas = Karras(steps=6, sigma_min=0.03, sigma_max=14.6).sigmas(AnalyticModel(demo_mixture()))
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x = x * sigmas[0]
    run = {"disable": True, "cond_arg": "label"}
    reference = sample_standard(denoiser, x, sigmas, split_args(), **run)
    by_default = sample_strength(denoiser, x, sigmas, split_args(), **run)
    assert torch.equal(by_default, reference)
    given = sample_strength(
        denoiser, x, sigmas, {"cond": LABELS, "uncond": NULL}, strength=3.0, **run
    )
    assert torch.equal(given, reference)  # split_args()'s cond_scale is 3.0 too
    with pytest.raises(InvalidArgument, match="strength = None"):
        sample_strength(denoiser, x, sigmas, {"cond": LABELS, "uncond": NULL}, **run)


def test_comfyui_widgets_leave_the_main_scale_to_the_guider() -> None:
    spec = widgets(Strength)["strength"]
    assert (
        spec[0] == "FLOAT" and spec[1]["default"] == UNSET and "guider's cfg" in spec[1]["tooltip"]
    )
    assert settings_from(Strength, {"strength": UNSET}) == {}
    assert settings_from(Strength, {"strength": 2.5}) == {"strength": 2.5}
    # no declared scale: an ordinary setting with its own default
    assert widgets(Unscaled)["guidance"][1]["default"] == 5.5
    assert settings_from(Unscaled, {"guidance": 4.0}) == {"guidance": 4.0}


def test_a_run_with_nan_names_the_declared_scales(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = AnalyticModel.predict

    def overflowing(self: Any, x: torch.Tensor, sigma: torch.Tensor, cond: Any) -> Any:
        pred = real(self, x, sigma, cond)
        return type(pred)(pred.x0 * 1e38, pred.eps * 1e38)

    registry = build_registry([("scales", plugin(sampler=[Strength]))], entry_points=False)
    monkeypatch.setattr("zsampling.plugins.manager.default_registry", lambda: registry)
    monkeypatch.setattr(AnalyticModel, "predict", overflowing)
    box = Sandbox(tmp_path)
    args = ["run", str(box.good()), "-q", "--set", 'sampler={use = "strength", strength = 30}']
    box.refused(args, 1, "non-finite", "denoise step", "sampler.strength = 30")
