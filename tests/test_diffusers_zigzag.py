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


def test_official_mode_matches_the_released_loop(tiny_sd: DiffusersModel) -> None:
    noise = latents_noise(SEEDS)
    ref = released_zigzag(tiny_sd.pipeline, PROMPTS, noise, STEPS, GAMMA1, GAMMA2)
    zig = Zigzag(guidance=GAMMA1, inversion="official", inversion_guidance=GAMMA2)
    kw: dict[str, Any] = dict(prompts=PROMPTS, seeds=SEEDS, schedule=Uniform(steps=STEPS))
    full = sample(tiny_sd, zig, guider=CFG(skip_unused_branches=False), **kw)
    skipping = sample(tiny_sd, zig, **kw)  # default CFG(): gamma2 = 0 needs only the uncond rows

    assert float((full.latents - ref).abs().max()) <= 1e-4
    assert float((skipping.latents - ref).abs().max()) <= 1e-4
    batch, guided = len(PROMPTS), 3 * STEPS - 2
    assert full.counter.guided_calls == skipping.counter.guided_calls == guided
    assert full.counter.rows == 2 * batch * guided  # what the released code pays
    assert skipping.counter.rows == full.counter.rows - batch * (STEPS - 1)
    assert skipping.counter.cond_rows == batch * (2 * STEPS - 1)


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
