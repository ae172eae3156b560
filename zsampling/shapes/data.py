"""What the shapes model trains on, and the prompts it finds hard.

Every shape has a *usual* colour (circles are mostly red, squares blue, triangles green; yellow is
never usual). A training object takes its shape's usual colour with probability ``USUAL`` and one
of the other three otherwise, so a prompt made of unusual colourings ("a blue circle left of a red
square") asks for a combination the model saw a few times in a thousand, as a text-to-image model
rarely saw "a blue banana". Those are the `HARD_PROMPTS`.

Renders are generated, never stored: training, the held-out reference and the held-out real arm
are draws from disjoint seeds (`TRAIN_SEED`, and the seeds the testbed names).
"""

from __future__ import annotations

import numpy as np

from zsampling.shapes.grammar import COUNTS, RELATIONS, Prompt, parse, scene
from zsampling.shapes.world import COLOURS, SHAPES, render

USUAL_COLOUR = {"circle": "red", "square": "blue", "triangle": "green"}
USUAL = 0.85
KIND_WEIGHTS = {"single": 0.3, "two": 0.25, "position": 0.25, "counting": 0.2}
TRAIN_SEED = 0

HARD_PROMPTS = [
    "a blue circle",
    "a yellow square",
    "a red triangle",
    "a blue circle and a green square",
    "a green circle and a red triangle",
    "a yellow triangle and a red square",
    "a green circle left of a red square",
    "a blue triangle above a yellow circle",
    "a red square right of a blue circle",
    "two blue circles",
    "three red triangles",
    "two yellow squares",
]
"""Prompts of unusually coloured shapes, three per kind of prompt (docs/shapes.md)."""

COMMON_PROMPTS = [
    "a red circle",
    "a blue square",
    "a green triangle",
    "a red circle and a blue square",
    "a blue square and a green triangle",
    "a green triangle and a red circle",
    "a red circle left of a blue square",
    "a green triangle above a red circle",
    "a blue square right of a green triangle",
    "two red circles",
    "three blue squares",
    "two green triangles",
]
"""The hard prompts' structure in the usual colours: every object as training mostly showed it."""


def _colour(shape: str, rng: np.random.Generator) -> str:
    if rng.random() < USUAL:
        return USUAL_COLOUR[shape]
    others = [c for c in COLOURS if c != USUAL_COLOUR[shape]]
    return others[int(rng.integers(len(others)))]


def training_prompt(rng: np.random.Generator) -> Prompt:
    """One prompt from the training distribution."""
    kind = str(rng.choice(list(KIND_WEIGHTS), p=list(KIND_WEIGHTS.values())))
    if kind in ("single", "counting"):
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        count = int(rng.choice(list(COUNTS.values()))) if kind == "counting" else 1
        return Prompt(kind, ((_colour(shape, rng), shape),), count=count)
    first, second = (SHAPES[int(i)] for i in rng.permutation(len(SHAPES))[:2])
    objects = ((_colour(first, rng), first), (_colour(second, rng), second))
    relation = RELATIONS[int(rng.integers(len(RELATIONS)))] if kind == "position" else None
    return Prompt(kind, objects, relation)


def training_set(n: int, seed: int = TRAIN_SEED) -> tuple[np.ndarray, list[str]]:
    """``n`` renders (N, 32, 32, 3) uint8 of training prompts, and the prompts."""
    rng = np.random.default_rng(seed)
    prompts = [training_prompt(rng) for _ in range(n)]
    return np.stack([render(scene(p, rng)) for p in prompts]), [p.text for p in prompts]


def renders(prompts: list[str], per_prompt: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """``per_prompt`` fresh renders of each prompt (prompt-major), from ``seed``."""
    rng = np.random.default_rng(seed)
    texts = [p for p in prompts for _ in range(per_prompt)]
    return np.stack([render(scene(parse(p), rng)) for p in texts]), texts
