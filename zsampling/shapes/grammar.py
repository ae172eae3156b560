"""The prompt grammar of the shapes world, and scenes drawn for a prompt.

Four kinds of prompt, after GenEval's categories::

    single     a red circle
    two        a red circle and a blue square
    position   a red circle left of a blue square      (also: right of, above, below)
    counting   two green triangles                     (also: three ...)

`parse` reads a prompt back into a `Prompt` (or says which word it cannot place); `scene` draws a
random scene that a prompt describes. Relations are judged on the dominant axis: "A left of B"
means B's centre is further right than A's by more than it is above or below it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zsampling.core.errors import InvalidArgument
from zsampling.shapes.world import COLOURS, SHAPES, SIZE, Thing

RELATIONS = ("left of", "right of", "above", "below")
COUNTS = {"two": 2, "three": 3}
KINDS = ("single", "two", "position", "counting")


@dataclass(frozen=True)
class Prompt:
    """What a prompt asks for: (colour, shape) pairs, a relation between the first two, a count."""

    kind: str
    objects: tuple[tuple[str, str], ...]
    relation: str | None = None
    count: int = 1

    @property
    def text(self) -> str:
        (c1, s1), *rest = self.objects
        if self.kind == "single":
            return f"a {c1} {s1}"
        if self.kind == "counting":
            word = next(w for w, n in COUNTS.items() if n == self.count)
            return f"{word} {c1} {s1}s"
        c2, s2 = rest[0]
        joint = "and" if self.kind == "two" else self.relation
        return f"a {c1} {s1} {joint} a {c2} {s2}"


def _object(words: list[str], prompt: str) -> tuple[str, str]:
    if len(words) != 3 or words[0] != "a" or words[1] not in COLOURS or words[2] not in SHAPES:
        raise InvalidArgument(
            "prompt",
            prompt,
            f"'a <colour> <shape>' parts, colour one of {sorted(COLOURS)}, shape one of "
            f"{list(SHAPES)} (docs/shapes.md)",
        )
    return words[1], words[2]


def parse(prompt: str) -> Prompt:
    """The `Prompt` a text names; `InvalidArgument` for text outside the grammar."""
    words = prompt.strip().lower().split()
    if len(words) == 3 and words[0] in COUNTS and words[2].endswith("s"):
        obj = _object(["a", words[1], words[2][:-1]], prompt)
        return Prompt("counting", (obj,), count=COUNTS[words[0]])
    if len(words) == 3:
        return Prompt("single", (_object(words, prompt),))
    for joint in ("and", *RELATIONS):
        j = joint.split()
        for k in range(3, len(words) - 2):
            if words[k : k + len(j)] == j and len(words) == 3 + len(j) + 3:
                first, second = _object(words[:3], prompt), _object(words[k + len(j) :], prompt)
                if first[1] == second[1]:
                    break
                kind = "two" if joint == "and" else "position"
                return Prompt(kind, (first, second), None if joint == "and" else joint)
    raise InvalidArgument(
        "prompt",
        prompt,
        "'a red circle', 'a red circle and a blue square', 'a red circle left of a blue square' "
        "(right of, above, below), or 'two red circles' (three); two objects are different "
        "shapes",
    )


def relation_holds(first: tuple[float, float], second: tuple[float, float], relation: str) -> bool:
    """Whether centre ``first`` is ``relation`` centre ``second`` on the dominant axis."""
    dx, dy = second[0] - first[0], second[1] - first[1]
    if relation in ("left of", "right of"):
        along = dx if relation == "left of" else -dx
        return along > abs(dy)
    along = dy if relation == "above" else -dy
    return along > abs(dx)


def scene(prompt: Prompt, rng: np.random.Generator) -> tuple[Thing, ...]:
    """A random scene that ``prompt`` describes: non-touching shapes (at least 2 px apart), the
    relation, if any, true with a margin."""
    n = prompt.count if prompt.kind == "counting" else len(prompt.objects)
    low, high = (10, 14) if n == 1 else (8, 12) if n == 2 else (7, 10)
    pairs = list(prompt.objects) * n if prompt.kind == "counting" else list(prompt.objects)
    while True:
        things: list[Thing] = []
        for colour, shape in pairs:
            size = int(rng.integers(low, high + 1))
            x, y = (int(v) for v in rng.integers(0, SIZE - size + 1, size=2))
            things.append(Thing(colour, shape, x, y, size))
        apart = all(a.gap(b) >= 2 for i, a in enumerate(things) for b in things[i + 1 :])
        if not apart:
            continue
        if prompt.relation is None:
            return tuple(things)
        a, b = things[0].centre, things[1].centre
        if relation_holds(a, b, prompt.relation) and _margin(a, b) >= 3:
            return tuple(things)


def _margin(a: tuple[float, float], b: tuple[float, float]) -> float:
    """How clearly the dominant axis dominates (pixels)."""
    return abs(abs(b[0] - a[0]) - abs(b[1] - a[1]))
