"""The shapes world and its exact judge: renders, the prompt grammar, the judge's rules."""

from __future__ import annotations

import numpy as np
import pytest

from zsampling.core.errors import InvalidArgument
from zsampling.shapes.data import HARD_PROMPTS, USUAL, USUAL_COLOUR, training_set
from zsampling.shapes.grammar import Prompt, parse, scene
from zsampling.shapes.judge import judge
from zsampling.shapes.scoring import judge_accuracy, judged
from zsampling.shapes.world import BACKGROUND, COLOURS, Thing, render


def test_renders_hold_palette_colours_only() -> None:
    images, _ = training_set(50, seed=5)
    palette = {BACKGROUND, *COLOURS.values()}
    assert {tuple(int(v) for v in p) for p in images.reshape(-1, 3)} <= palette


def test_the_three_shapes_fill_their_boxes_as_geometry_says() -> None:
    for shape, share in (("square", 1.0), ("circle", np.pi / 4), ("triangle", 0.5)):
        img = render([Thing("red", shape, 4, 4, 20)])
        area = (img != BACKGROUND).any(-1).sum()
        assert area / 400 == pytest.approx(share, abs=0.05)


@pytest.mark.parametrize(
    ("text", "kind", "count"),
    [
        ("a red circle", "single", 1),
        ("a red circle and a blue square", "two", 1),
        ("a red circle left of a blue square", "position", 1),
        ("a green triangle below a yellow circle", "position", 1),
        ("two green triangles", "counting", 2),
        ("three blue squares", "counting", 3),
    ],
)
def test_prompts_parse_and_print_back(text: str, kind: str, count: int) -> None:
    prompt = parse(text)
    assert (prompt.kind, prompt.count, prompt.text) == (kind, count, text)


@pytest.mark.parametrize(
    "text",
    [
        "a purple circle",
        "a red hexagon",
        "a red circle near a blue square",
        "",
        "four red circles",
        "a red circle and a blue circle",
    ],
)
def test_text_outside_the_grammar_is_refused_by_field(text: str) -> None:
    with pytest.raises(InvalidArgument, match="prompt") as err:
        parse(text)
    assert repr(text) in str(err.value) or text == ""


def test_scenes_satisfy_their_relation_on_the_dominant_axis() -> None:
    rng = np.random.default_rng(0)
    for relation in ("left of", "right of", "above", "below"):
        prompt = Prompt("position", (("red", "circle"), ("blue", "square")), relation)
        for _ in range(20):
            a, b = scene(prompt, rng)[:2]
            dx, dy = b.centre[0] - a.centre[0], b.centre[1] - a.centre[1]
            along = {"left of": dx, "right of": -dx, "above": dy, "below": -dy}[relation]
            across = abs(dy) if relation in ("left of", "right of") else abs(dx)
            assert along > across


def test_the_judge_reads_every_held_out_render_exactly() -> None:
    report = judge_accuracy(n=400, seed=123)
    assert report["accuracy"] == 1.0 and report["misses"] == []


def test_the_judge_catches_each_kind_of_mistake() -> None:
    circle, square = Thing("red", "circle", 2, 10, 10), Thing("blue", "square", 20, 10, 10)
    img = render([circle, square])
    assert judge(img, "a red circle left of a blue square").right
    swapped = judge(img, "a red circle right of a blue square").checks
    assert swapped["attribution"] and not swapped["position"] and not swapped["exact"]
    recoloured = judge(img, "a blue circle and a red square").checks
    assert recoloured["object"] and not recoloured["attribution"]
    single = judge(render([circle]), "a green circle").checks
    assert single == {"object": True, "colour": False, "exact": False}
    assert not judge(
        render([circle, Thing("red", "circle", 20, 10, 10)]), "three red circles"
    ).checks["count"]
    assert not judge(img, "a red circle").right  # an extra object is not what was asked


def test_batch_statistics_leave_categories_a_prompt_lacks_empty() -> None:
    images = np.stack([render([Thing("red", "circle", 5, 5, 12)])] * 2)
    stats, features = judged(images, ["a red circle", "a blue circle"])
    assert stats["accuracy"].tolist() == [1.0, 0.0]
    assert np.isnan(stats["position"]).all() and stats["colour"].tolist() == [1.0, 0.0]
    assert stats["logp"][0] > stats["logp"][1] and np.all(stats["logp"] < 0)
    assert features.shape == (2, 192)


def test_hard_prompts_are_rare_in_training() -> None:
    for text in HARD_PROMPTS:
        prompt = parse(text)
        assert all(USUAL_COLOUR[s] != c for c, s in prompt.objects)
    _, prompts = training_set(2000, seed=1)
    hard = sum(p in HARD_PROMPTS for p in prompts)
    assert hard / len(prompts) < (1 - USUAL) / 3
