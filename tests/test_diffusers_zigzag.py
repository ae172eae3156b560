"""Z-Sampling on a real (tiny) SD pipeline against a literal re-run of the released code's loop
(`zsampling.testing.released_loop`, which uses diffusers' schedulers and nothing of zsampling)."""

from __future__ import annotations

from typing import Any

import pytest

from zsampling import CFG, Uniform, Zigzag, sample
from zsampling.adapters.diffusers import DiffusersModel
from zsampling.testing.released_loop import released_zigzag
from zsampling.testing.tiny import latents_noise

pytestmark = pytest.mark.usefixtures("single_thread")

PROMPTS = ["a red cube", "a cat on a mat"]
SEEDS = [1, 2]
STEPS = 8
GAMMA1, GAMMA2 = 3.0, 0.0


@pytest.mark.parametrize("fixture", ["tiny_sd", "tiny_sdv"])
def test_official_mode_matches_the_released_loop(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    """Epsilon and v-prediction alike, to relative 3e-6 (max |diff| / max |latent|).

    On v-prediction the released code's ``DDIMInverseScheduler.step`` turns the UNet's v into
    ``(x0, eps)`` at its own source level (t_{i+2}, or ``alphas_cumprod[0]`` on the last zag),
    not where the UNet was evaluated (t_i): the path keeps v there (``reinterpret_keeps``).
    Converting at t_i instead differed by 1.87 on latents of 2.95.
    """
    model: DiffusersModel = request.getfixturevalue(fixture)
    noise = latents_noise(SEEDS)
    for gamma2 in (GAMMA2, 1.5):
        ref = released_zigzag(model.pipeline, PROMPTS, noise, STEPS, GAMMA1, gamma2)
        zig = Zigzag(guidance=GAMMA1, inversion="official", inversion_guidance=gamma2)
        kw: dict[str, Any] = dict(prompts=PROMPTS, seeds=SEEDS, schedule=Uniform(steps=STEPS))
        full = sample(model, zig, guider=CFG(skip_unused_branches=False), **kw)
        skipping = sample(model, zig, **kw)  # default CFG(): gamma2 = 0 needs only uncond rows
        scale = float(ref.abs().max())
        assert float((full.latents - ref).abs().max()) <= 3e-6 * scale
        assert float((skipping.latents - ref).abs().max()) <= 3e-6 * scale
    batch, guided = len(PROMPTS), 3 * STEPS - 2
    assert full.counter.guided_calls == skipping.counter.guided_calls == guided
    assert full.counter.rows == 2 * batch * guided  # what the released code pays


def test_official_mode_skips_the_branch_gamma2_0_does_not_use(tiny_sd: DiffusersModel) -> None:
    kw: dict[str, Any] = dict(prompts=PROMPTS, seeds=SEEDS, schedule=Uniform(steps=STEPS))
    zig = Zigzag(guidance=GAMMA1, inversion="official", inversion_guidance=0.0)
    full = sample(tiny_sd, zig, guider=CFG(skip_unused_branches=False), **kw)
    skipping = sample(tiny_sd, zig, **kw)
    batch = len(PROMPTS)
    assert skipping.counter.rows == full.counter.rows - batch * (STEPS - 1)
    assert skipping.counter.cond_rows == batch * (2 * STEPS - 1)
    assert float((full.latents - skipping.latents).abs().max()) <= 1e-6 * float(
        full.latents.abs().max()
    )


def test_official_mode_differs_from_target_mode(tiny_sd: DiffusersModel) -> None:
    """The off-by-one is visible on a real UNet too (so the test above can tell them apart)."""
    kw: dict[str, Any] = dict(prompts=PROMPTS, seeds=SEEDS, schedule=Uniform(steps=STEPS))
    official = sample(tiny_sd, Zigzag(guidance=GAMMA1, inversion="official"), **kw)
    target = sample(tiny_sd, Zigzag(guidance=GAMMA1, inversion="target"), **kw)
    assert float((official.latents - target.latents).abs().max()) > 1e-2


def test_official_mode_matches_the_released_sdxl_loop(tiny_sdxl: DiffusersModel) -> None:
    """The released code is an SDXL pipeline: pooled text and size ids included."""
    noise = latents_noise(SEEDS)
    ref = released_zigzag(tiny_sdxl.pipeline, PROMPTS, noise, STEPS, GAMMA1, GAMMA2)
    zig = Zigzag(guidance=GAMMA1, inversion="official", inversion_guidance=GAMMA2)
    ours = sample(tiny_sdxl, zig, prompts=PROMPTS, seeds=SEEDS, schedule=Uniform(steps=STEPS))
    assert float((ours.latents - ref).abs().max()) <= 1e-4
