"""Reflective samplers: the route through the levels (see `zsampling.core.sampler`)."""

from zsampling.core.sampler import ReflectiveSampler
from zsampling.samplers.asymmetry import AsymmetryZigzag
from zsampling.samplers.implicit_zigzag import ImplicitZigzag
from zsampling.samplers.restart import Restart
from zsampling.samplers.standard import Standard
from zsampling.samplers.w2sd import W2SD
from zsampling.samplers.z2 import Z2
from zsampling.samplers.zigzag import Zigzag

__all__ = [
    "W2SD",
    "Z2",
    "AsymmetryZigzag",
    "ImplicitZigzag",
    "ReflectiveSampler",
    "Restart",
    "Standard",
    "Zigzag",
]
