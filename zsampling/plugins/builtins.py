"""zsampling's own components, registered through the same hooks as any third-party plugin."""

from __future__ import annotations

from zsampling.adapters.analytic import AnalyticAdapter
from zsampling.adapters.diffusers import DiffusersAdapter
from zsampling.adapters.digits import DigitPairsAdapter, DigitsAdapter
from zsampling.adapters.flow import SD3Adapter
from zsampling.adapters.flux import FluxAdapter
from zsampling.adapters.kdiffusion import KDiffusionAdapter
from zsampling.core.cfg import CFG
from zsampling.core.kinds import Kind
from zsampling.core.solvers import DDIM, DPMSolverPP2M, Euler
from zsampling.guiders import APG, CFGZeroStar, TangentialCFG, TrueCFG
from zsampling.metrics import (
    ClassPosterior,
    ClipScore,
    DigitAccuracy,
    DigitAlignment,
    DigitTypicality,
    LogDensity,
)
from zsampling.observers import StepLog
from zsampling.patches.lora import Lora
from zsampling.patches.threshold import DynamicThreshold
from zsampling.patches.unet_weights import UNetWeights
from zsampling.plugins import hookimpl
from zsampling.plugins.hookspecs import Register
from zsampling.samplers import W2SD, AsymmetryZigzag, Restart, Standard, Zigzag
from zsampling.schedules import AlignYourSteps, FlowMatch, Karras, Scheduler, Uniform
from zsampling.solvers.ancestral import EulerAncestral
from zsampling.solvers.ddpm import DDPM
from zsampling.solvers.dpm2_ancestral import DPM2Ancestral
from zsampling.solvers.dpmpp_2m_sde import DPMPP2MSDE
from zsampling.solvers.dpmpp_2s_ancestral import DPMPP2SAncestral
from zsampling.solvers.dpmpp_3m_sde import DPMPP3MSDE
from zsampling.solvers.dpmpp_sde import DPMPPSDE
from zsampling.solvers.er_sde import ERSDE
from zsampling.solvers.lcm import LCM

BUILTINS: dict[Kind, tuple[type, ...]] = {
    "adapter": (
        AnalyticAdapter,
        DigitsAdapter,
        DigitPairsAdapter,
        DiffusersAdapter,
        SD3Adapter,
        FluxAdapter,
        KDiffusionAdapter,
    ),
    "schedule": (Uniform, Karras, AlignYourSteps, Scheduler, FlowMatch),
    "solver": (
        DDIM,
        Euler,
        DPMSolverPP2M,
        EulerAncestral,
        DPM2Ancestral,
        DPMPP2SAncestral,
        DPMPPSDE,
        DPMPP2MSDE,
        DPMPP3MSDE,
        DDPM,
        ERSDE,
        LCM,
    ),
    "guider": (CFG, APG, CFGZeroStar, TangentialCFG, TrueCFG),
    "sampler": (Standard, Zigzag, AsymmetryZigzag, Restart, W2SD),
    "patch": (DynamicThreshold, UNetWeights, Lora),
    "observer": (StepLog,),
    "metric": (
        ClassPosterior,
        LogDensity,
        DigitAlignment,
        DigitAccuracy,
        DigitTypicality,
        ClipScore,
    ),
}
"""zsampling's components by kind, in the order listings show them."""


def _register(kind: Kind, register: Register) -> None:
    for cls in BUILTINS[kind]:
        register(cls)


@hookimpl
def zsampling_register_adapters(register: Register) -> None:
    _register("adapter", register)


@hookimpl
def zsampling_register_schedules(register: Register) -> None:
    _register("schedule", register)


@hookimpl
def zsampling_register_solvers(register: Register) -> None:
    _register("solver", register)


@hookimpl
def zsampling_register_guiders(register: Register) -> None:
    _register("guider", register)


@hookimpl
def zsampling_register_samplers(register: Register) -> None:
    _register("sampler", register)


@hookimpl
def zsampling_register_patches(register: Register) -> None:
    _register("patch", register)


@hookimpl
def zsampling_register_observers(register: Register) -> None:
    _register("observer", register)


@hookimpl
def zsampling_register_metrics(register: Register) -> None:
    _register("metric", register)
