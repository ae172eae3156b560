"""zsampling: composable reflective diffusion samplers (Z-Sampling, Restart, W2SD, ...).

The public names below are imported on first use (PEP 562), so that ``zsampling --help`` and
other light commands do not pay for importing torch. This module is the top of the layer map
(see docs/architecture.md): it may name anything, and nothing inside the package imports it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from zsampling.core.version import VERSION

__version__ = VERSION

_EXPORTS: dict[str, str] = {
    "AlignYourSteps": "zsampling.schedules",
    "CFG": "zsampling.core.cfg",
    "Component": "zsampling.core.component",
    "DDIM": "zsampling.core.solvers",
    "DPMSolverPP2M": "zsampling.core.solvers",
    "Euler": "zsampling.core.solvers",
    "EvaluationCounter": "zsampling.core.guidance",
    "GuidanceCall": "zsampling.core.rules",
    "GuidanceContext": "zsampling.core.guidance",
    "GuidanceRule": "zsampling.core.rules",
    "Guider": "zsampling.core.guidance",
    "InvalidArgument": "zsampling.core.errors",
    "Karras": "zsampling.schedules",
    "ModelAdapter": "zsampling.core.model",
    "NonFiniteLatents": "zsampling.core.errors",
    "Prediction": "zsampling.core.prediction",
    "Process": "zsampling.core.levels",
    "ReflectiveSampler": "zsampling.core.sampler",
    "Restart": "zsampling.samplers",
    "SampleResult": "zsampling.core.sampling",
    "SamplingPath": "zsampling.core.path",
    "Schedule": "zsampling.core.schedule",
    "Standard": "zsampling.samplers",
    "StepEvent": "zsampling.core.events",
    "TimestepTable": "zsampling.core.levels",
    "TrajectoryRecorder": "zsampling.core.events",
    "Uniform": "zsampling.schedules",
    "W2SD": "zsampling.samplers",
    "ZSamplingError": "zsampling.core.errors",
    "Zigzag": "zsampling.samplers",
    "generate": "zsampling.integrations.diffusers",
    "initial_noise": "zsampling.core.sampling",
    "sample": "zsampling.core.sampling",
}

__all__ = [
    "CFG",
    "DDIM",
    "W2SD",
    "AlignYourSteps",
    "Component",
    "DPMSolverPP2M",
    "Euler",
    "EvaluationCounter",
    "GuidanceCall",
    "GuidanceContext",
    "GuidanceRule",
    "Guider",
    "InvalidArgument",
    "Karras",
    "ModelAdapter",
    "NonFiniteLatents",
    "Prediction",
    "Process",
    "ReflectiveSampler",
    "Restart",
    "SampleResult",
    "SamplingPath",
    "Schedule",
    "Standard",
    "StepEvent",
    "TimestepTable",
    "TrajectoryRecorder",
    "Uniform",
    "ZSamplingError",
    "Zigzag",
    "generate",
    "initial_noise",
    "sample",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'zsampling' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:
    from zsampling.core.cfg import CFG
    from zsampling.core.component import Component
    from zsampling.core.errors import InvalidArgument, NonFiniteLatents, ZSamplingError
    from zsampling.core.events import StepEvent, TrajectoryRecorder
    from zsampling.core.guidance import EvaluationCounter, GuidanceContext, Guider
    from zsampling.core.levels import Process, TimestepTable
    from zsampling.core.model import ModelAdapter
    from zsampling.core.path import SamplingPath
    from zsampling.core.prediction import Prediction
    from zsampling.core.rules import GuidanceCall, GuidanceRule
    from zsampling.core.sampler import ReflectiveSampler
    from zsampling.core.sampling import SampleResult, initial_noise, sample
    from zsampling.core.schedule import Schedule
    from zsampling.core.solvers import DDIM, DPMSolverPP2M, Euler
    from zsampling.integrations.diffusers import generate
    from zsampling.samplers import W2SD, Restart, Standard, Zigzag
    from zsampling.schedules import AlignYourSteps, Karras, Uniform
