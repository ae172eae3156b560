"""The exact judge: reads shapes back from an image by rule, no learned weights.

1. **Colour.** Every pixel goes to the nearest palette colour (`zsampling.shapes.world.COLOURS`)
   or the background, in RGB; a pixel further than `MAX_DISTANCE` from all of them is noise and
   belongs to nothing.
2. **Objects.** The 8-connected components of each colour; specks under `MIN_AREA` pixels are
   ignored.
3. **Shape by geometry.** A triangle's mass sits low in its bounding box (its centroid at 2/3 of
   the height, a circle's and a square's at 1/2); of the rest, a square fills its box and a circle
   fills pi/4 of it.
4. **Scoring.** A prompt's checks (`checks`), after GenEval's categories: ``object`` (each named
   shape is there), ``colour`` (a single object's colour), ``attribution`` (each named colour sits
   on its named shape), ``position`` (the relation holds between those objects), ``count`` (exactly
   that many of that shape), and ``exact``: the image shows what the prompt says and nothing else.

On renders every rule is exact by construction; `zsampling.shapes.judge_accuracy` measures it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zsampling.core.extras import extra
from zsampling.shapes.grammar import Prompt, parse, relation_holds
from zsampling.shapes.world import BACKGROUND, COLOURS

MAX_DISTANCE = 90.0
MIN_AREA = 12
TRIANGLE_CENTROID = 0.59  # relative height of the centroid above which a blob is a triangle
SQUARE_FILL = 0.89  # share of the bounding box above which a blob is a square
CATEGORIES = ("object", "colour", "attribution", "position", "count")

_PALETTE = np.array([BACKGROUND, *COLOURS.values()], dtype=np.float64)
_NAMES = ("background", *COLOURS)


@dataclass(frozen=True)
class Seen:
    """One object the judge found."""

    colour: str
    shape: str
    centre: tuple[float, float]
    area: int


def colour_map(image: np.ndarray) -> np.ndarray:
    """(H, W) palette indices (0 = background, -1 = noise) of a uint8 (H, W, 3) image."""
    d = np.linalg.norm(image[..., None, :].astype(np.float64) - _PALETTE, axis=-1)
    index = d.argmin(-1)
    index[d.min(-1) > MAX_DISTANCE] = -1
    return index


def classify(mask: np.ndarray) -> str:
    """'circle', 'square' or 'triangle' from a blob's geometry (see the module docstring)."""
    ys, xs = np.nonzero(mask)
    top, height = ys.min(), ys.max() - ys.min() + 1
    width = xs.max() - xs.min() + 1
    centroid = (ys.mean() - top + 0.5) / height
    if centroid > TRIANGLE_CENTROID:
        return "triangle"
    return "square" if len(ys) / (height * width) > SQUARE_FILL else "circle"


def detect(image: np.ndarray) -> list[Seen]:
    """Every object in a uint8 (H, W, 3) image, largest first."""
    with extra("eval", "The shapes judge"):
        from scipy import ndimage

    index = colour_map(image)
    found = []
    for k, name in enumerate(_NAMES[1:], start=1):
        labels, n = ndimage.label(index == k, structure=np.ones((3, 3)))
        for j in range(1, n + 1):
            blob = labels == j
            area = int(blob.sum())
            if area < MIN_AREA:
                continue
            ys, xs = np.nonzero(blob)
            centre = (float(xs.mean()) + 0.5, float(ys.mean()) + 0.5)
            found.append(Seen(name, classify(blob), centre, area))
    return sorted(found, key=lambda s: -s.area)


def _find(seen: list[Seen], colour: str | None, shape: str) -> list[Seen]:
    return [s for s in seen if s.shape == shape and (colour is None or s.colour == colour)]


def checks(prompt: Prompt, seen: list[Seen]) -> dict[str, bool]:
    """The prompt's checks that apply to it (see the module docstring), ``exact`` last."""
    out: dict[str, bool] = {}
    out["object"] = all(_find(seen, None, s) for _, s in prompt.objects)
    if prompt.kind == "single":
        out["colour"] = (
            out["object"]
            and _find(seen, None, prompt.objects[0][1])[0].colour == (prompt.objects[0][0])
        )
    if prompt.kind in ("two", "position"):
        out["attribution"] = all(_find(seen, c, s) for c, s in prompt.objects)
    if prompt.kind == "position":
        (c1, s1), (c2, s2) = prompt.objects
        first, second = _find(seen, c1, s1), _find(seen, c2, s2)
        assert prompt.relation is not None
        out["position"] = bool(first and second) and relation_holds(
            first[0].centre, second[0].centre, prompt.relation
        )
    if prompt.kind == "counting":
        out["count"] = len(_find(seen, None, prompt.objects[0][1])) == prompt.count
    wanted = sorted(prompt.objects * prompt.count)
    out["exact"] = all(out.values()) and sorted((s.colour, s.shape) for s in seen) == wanted
    return out


@dataclass(frozen=True)
class Verdict:
    """The judge on one image: its checks, whether all pass, and the share passed."""

    checks: dict[str, bool]
    seen: list[Seen]

    @property
    def right(self) -> bool:
        return self.checks["exact"]

    @property
    def share(self) -> float:
        """Checks passed, Laplace-smoothed: (passed + 1/2) / (checks + 1), never 0 or 1."""
        return (sum(self.checks.values()) + 0.5) / (len(self.checks) + 1)


def judge(image: np.ndarray, prompt: str) -> Verdict:
    """Read ``image`` (uint8 HWC) against ``prompt``."""
    seen = detect(image)
    return Verdict(checks(parse(prompt), seen), seen)
