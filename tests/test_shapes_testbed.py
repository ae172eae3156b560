"""The shapes testbed as the leaderboard and `zsampling eval` use it: the exact judge on the real
arm, per-category statistics, the attention-perturbing guiders running on the real UNet."""

from __future__ import annotations

import numpy as np
import pytest

from zsampling import PAG, SEG, SLG, Standard
from zsampling.evaluation.frontier import real_arm, run_arm
from zsampling.evaluation.leaderboard import _summary
from zsampling.evaluation.testbeds import MODEL_TESTBEDS, TESTBEDS

pytestmark = pytest.mark.usefixtures("single_thread")

PROMPTS = ["a blue circle", "a green circle left of a red square", "two blue circles"]


@pytest.fixture(scope="module")
def testbed():  # type: ignore[no-untyped-def]
    bed = TESTBEDS["shapes"](items_per_prompt=3, prompts=PROMPTS)
    bed.steps = 6
    return bed


def test_the_real_arm_is_read_exactly_with_a_column_per_category(testbed) -> None:  # type: ignore[no-untyped-def]
    real = real_arm(testbed)
    assert real.stats["accuracy"].tolist() == [1.0] * 9
    summary = _summary(real, None)["alignment"]
    assert summary["colour"] == summary["position"] == summary["count"] == 1.0
    assert np.isnan(real.stats["count"][:6]).all()  # only the counting prompt has a count
    assert real.features.shape == (9, 192)
    assert MODEL_TESTBEDS["shapes"] == "shapes"


@pytest.mark.parametrize("guider", [PAG(), SEG(), SLG()], ids=["pag", "seg", "slg"])
def test_attention_perturbing_guiders_run_on_the_shapes_unet(testbed, guider) -> None:  # type: ignore[no-untyped-def]
    plain = run_arm(testbed, "cfg", "cfg", "cfg", Standard(guidance=3.0))
    guided = run_arm(testbed, "g", "g", "method", Standard(guidance=3.0), guider=guider)
    assert guided.rows_per_item > plain.rows_per_item  # the perturbed branch ran
    assert plain.latents is not None and guided.latents is not None
    assert not np.allclose(plain.latents.numpy(), guided.latents.numpy())
    assert np.isfinite(guided.stats["logp"]).all()


def test_the_demo_on_shapes_draws_colour_samples_with_verdicts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image
    from typer.testing import CliRunner

    from zsampling.cli import app

    result = CliRunner().invoke(
        app, ["demo", "--model", "shapes", "--out", str(tmp_path), "--items", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "rule-based judge" in " ".join(result.output.split())
    with Image.open(tmp_path / "comparison.png") as img:
        assert img.mode == "RGB"
        # 8 prompts of 128-px tiles with captions; 3 arms of 3 samples beside the labels
        assert img.size[0] > 260 + 3 * 3 * 128 and img.size[1] > 8 * 150
        pixels = np.asarray(img)
    framed = {(0, 128, 0), (255, 0, 0)}  # PIL's "green" and "red": every tile has a verdict
    colours = {tuple(int(v) for v in p) for p in pixels.reshape(-1, 3)[::7]}
    assert colours & framed


def test_compare_reads_a_colour_png_back_as_the_image_the_judge_reads(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    from zsampling.compare.scores import as_latents
    from zsampling.shapes.world import Thing, render

    img = render([Thing("blue", "square", 4, 4, 12)])
    Image.fromarray(img).save(tmp_path / "x.png")
    back = as_latents(tmp_path / "x.png")
    assert back.shape == (3, 32, 32)
    stats, _ = TESTBEDS["shapes"](prompts=["a blue square"]).judge(back[None], ["a blue square"])
    assert stats["accuracy"].tolist() == [1.0]
