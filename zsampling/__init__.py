"""zsampling: composable reflective diffusion samplers (Z-Sampling, Restart, W2SD, ...).

The public names below are imported on first use (PEP 562), so that ``zsampling --help`` and
other light commands do not pay for importing torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "CFG": "zsampling.guidance",
    "DDIM": "zsampling.solvers",
    "DPMSolverPP2M": "zsampling.solvers",
    "Euler": "zsampling.solvers",
    "EvaluationCounter": "zsampling.guidance",
    "Guider": "zsampling.guidance",
    "InvalidArgument": "zsampling.errors",
    "Karras": "zsampling.schedules",
    "NonFiniteLatents": "zsampling.errors",
    "Prediction": "zsampling.prediction",
    "Process": "zsampling.levels",
    "ReflectiveSampler": "zsampling.samplers",
    "Restart": "zsampling.samplers",
    "SampleResult": "zsampling.sampling",
    "SamplingPath": "zsampling.path",
    "Standard": "zsampling.samplers",
    "StepEvent": "zsampling.observers",
    "TimestepTable": "zsampling.levels",
    "TrajectoryRecorder": "zsampling.observers",
    "Uniform": "zsampling.schedules",
    "W2SD": "zsampling.samplers",
    "ZSamplingError": "zsampling.errors",
    "Zigzag": "zsampling.samplers",
    "initial_noise": "zsampling.sampling",
    "sample": "zsampling.sampling",
}

__all__ = [
    "CFG",
    "DDIM",
    "W2SD",
    "DPMSolverPP2M",
    "Euler",
    "EvaluationCounter",
    "Guider",
    "InvalidArgument",
    "Karras",
    "NonFiniteLatents",
    "Prediction",
    "Process",
    "ReflectiveSampler",
    "Restart",
    "SampleResult",
    "SamplingPath",
    "Standard",
    "StepEvent",
    "TimestepTable",
    "TrajectoryRecorder",
    "Uniform",
    "ZSamplingError",
    "Zigzag",
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
    from zsampling.errors import InvalidArgument, NonFiniteLatents, ZSamplingError
    from zsampling.guidance import CFG, EvaluationCounter, Guider
    from zsampling.levels import Process, TimestepTable
    from zsampling.observers import StepEvent, TrajectoryRecorder
    from zsampling.path import SamplingPath
    from zsampling.prediction import Prediction
    from zsampling.samplers import W2SD, ReflectiveSampler, Restart, Standard, Zigzag
    from zsampling.sampling import SampleResult, initial_noise, sample
    from zsampling.schedules import Karras, Uniform
    from zsampling.solvers import DDIM, DPMSolverPP2M, Euler
