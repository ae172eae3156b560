"""zsampling: composable reflective diffusion samplers (Z-Sampling, Restart, W2SD, ...)."""

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

__version__ = "0.1.0"

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
