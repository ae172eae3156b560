"""Reflective samplers: the route through the levels (see `zsampling.core.sampler`)."""

from zsampling.core.sampler import ReflectiveSampler
from zsampling.samplers.asymmetry import AsymmetryZigzag
from zsampling.samplers.restart import Restart
from zsampling.samplers.standard import Standard
from zsampling.samplers.w2sd import W2SD
from zsampling.samplers.zigzag import Zigzag

__all__ = ["W2SD", "AsymmetryZigzag", "ReflectiveSampler", "Restart", "Standard", "Zigzag"]
