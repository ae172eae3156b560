"""zsampling's own components, registered through the same hooks as any third-party plugin."""

from __future__ import annotations

from zsampling.adapters.analytic import AnalyticAdapter
from zsampling.guidance import CFG
from zsampling.metrics import ClassPosterior, LogDensity
from zsampling.observers import StepLog
from zsampling.patches.threshold import DynamicThreshold
from zsampling.plugins import hookimpl
from zsampling.plugins.hookspecs import Register
from zsampling.samplers import W2SD, Restart, Standard, Zigzag
from zsampling.schedules import Karras, Uniform
from zsampling.solvers import DDIM, DPMSolverPP2M, Euler


@hookimpl
def zsampling_register_adapters(register: Register) -> None:
    register(AnalyticAdapter)


@hookimpl
def zsampling_register_schedules(register: Register) -> None:
    register(Uniform)
    register(Karras)


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


@hookimpl
def zsampling_register_observers(register: Register) -> None:
    register(StepLog)


@hookimpl
def zsampling_register_metrics(register: Register) -> None:
    register(ClassPosterior)
    register(LogDensity)
