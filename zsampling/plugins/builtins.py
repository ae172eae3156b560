"""zsampling's own components, registered through the same hooks as any third-party plugin."""

from __future__ import annotations

from zsampling.adapters.analytic import AnalyticAdapter
from zsampling.adapters.diffusers import DiffusersAdapter
from zsampling.adapters.digits import DigitsAdapter
from zsampling.adapters.flow import FlowAdapter, FlowMatch
from zsampling.adapters.kdiffusion import KDiffusionAdapter
from zsampling.guidance import CFG
from zsampling.metrics import ClassPosterior, DigitAlignment, DigitRealism, LogDensity
from zsampling.metrics_clip import ClipScore
from zsampling.observers import StepLog
from zsampling.patches.lora import Lora
from zsampling.patches.threshold import DynamicThreshold
from zsampling.patches.unet_weights import UNetWeights
from zsampling.plugins import hookimpl
from zsampling.plugins.hookspecs import Register
from zsampling.samplers import W2SD, Restart, Standard, Zigzag
from zsampling.schedules import Karras, Uniform
from zsampling.schedules_ays import AlignYourSteps
from zsampling.schedules_diffusers import Scheduler
from zsampling.solvers import DDIM, DPMSolverPP2M, Euler


@hookimpl
def zsampling_register_adapters(register: Register) -> None:
    register(AnalyticAdapter)
    register(DigitsAdapter)
    register(DiffusersAdapter)
    register(FlowAdapter)
    register(KDiffusionAdapter)


@hookimpl
def zsampling_register_schedules(register: Register) -> None:
    register(Uniform)
    register(Karras)
    register(AlignYourSteps)
    register(Scheduler)
    register(FlowMatch)


@hookimpl
def zsampling_register_solvers(register: Register) -> None:
    register(DDIM)
    register(Euler)
    register(DPMSolverPP2M)


@hookimpl
def zsampling_register_guiders(register: Register) -> None:
    register(CFG)


@hookimpl
def zsampling_register_samplers(register: Register) -> None:
    register(Standard)
    register(Zigzag)
    register(Restart)
    register(W2SD)


@hookimpl
def zsampling_register_patches(register: Register) -> None:
    register(DynamicThreshold)
    register(UNetWeights)
    register(Lora)


@hookimpl
def zsampling_register_observers(register: Register) -> None:
    register(StepLog)


@hookimpl
def zsampling_register_metrics(register: Register) -> None:
    register(ClassPosterior)
    register(LogDensity)
    register(DigitAlignment)
    register(DigitRealism)
    register(ClipScore)
