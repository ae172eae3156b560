"""The shapes world: what a scene is and how it is drawn.

A scene is one to three flat-coloured shapes on a light background, 32x32 RGB, drawn without
antialiasing so every pixel is either the background or exactly one palette colour. That is what
makes the judge (`zsampling.shapes.judge`) exact on renders: a colour is a palette entry, an object
is a connected component, a shape is read from geometry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZE = 32
BACKGROUND = (235, 235, 235)
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (40, 165, 50),
    "blue": (35, 70, 215),
    "yellow": (235, 195, 20),
}
SHAPES = ("circle", "square", "triangle")


@dataclass(frozen=True)
class Thing:
    """One shape: its colour and kind, its bounding box's top-left corner and side (pixels)."""

    colour: str
    shape: str
    x: int
    y: int
    size: int

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.size / 2, self.y + self.size / 2

    def gap(self, other: Thing) -> int:
        """Pixels between the two bounding boxes along the axis where they are furthest apart
        (negative when the boxes overlap)."""
        dx = max(other.x - (self.x + self.size), self.x - (other.x + other.size))
        dy = max(other.y - (self.y + self.size), self.y - (other.y + other.size))
        return max(dx, dy)


def render(things: tuple[Thing, ...] | list[Thing]) -> np.ndarray:
    """The scene as a (32, 32, 3) uint8 image."""
    img = np.empty((SIZE, SIZE, 3), dtype=np.uint8)
    img[:] = BACKGROUND
    ys, xs = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    for t in things:
        img[_mask(t, xs, ys)] = COLOURS[t.colour]
    return img


def _mask(t: Thing, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Pixels whose centres fall inside the shape."""
    u, v = (xs - t.x) / t.size, (ys - t.y) / t.size  # the box as [0, 1]^2
    inside = (u >= 0) & (u <= 1) & (v >= 0) & (v <= 1)
    if t.shape == "square":
        return inside
    if t.shape == "circle":
        return (u - 0.5) ** 2 + (v - 0.5) ** 2 <= 0.25
    # an upright isosceles triangle: apex at the top middle, base along the bottom
    return inside & (np.abs(u - 0.5) <= v / 2)


def to_model_range(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) to float32 (N, 3, H, W) in [-1, 1], the VAE's input."""
    return (images.astype(np.float32) / 127.5 - 1.0).transpose(0, 3, 1, 2)


def from_model_range(images: np.ndarray) -> np.ndarray:
    """float (N, 3, H, W) in [-1, 1] to uint8 (N, H, W, 3)."""
    x = np.clip((np.asarray(images, dtype=np.float64) + 1.0) * 127.5, 0, 255)
    return np.rint(x).astype(np.uint8).transpose(0, 2, 3, 1)
