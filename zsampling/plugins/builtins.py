"""zsampling's own components, registered through the same hooks as any third-party plugin."""

from __future__ import annotations

from zsampling.adapters.analytic import AnalyticAdapter
from zsampling.adapters.diffusers import DiffusersAdapter
from zsampling.adapters.digits import DigitPairsAdapter, DigitsAdapter
from zsampling.adapters.flow import SD3Adapter
from zsampling.adapters.flux import FluxAdapter
from zsampling.adapters.kdiffusion import KDiffusionAdapter
from zsampling.adapters.shapes import ShapesAdapter
from zsampling.core.cfg import CFG
from zsampling.core.kinds import Kind
from zsampling.core.solvers import DDIM, DPMSolverPP2M, Euler
from zsampling.guiders import (
    APG,
    PAG,
    SEG,
    SLG,
    AdaptiveProjectedMixGuidance,
    AutoGuidance,
    CFGPlusPlus,
    CFGZeroStar,
    FrequencyDecoupledGuidance,
    MagnitudeAwareGuidance,
    RescaledCFG,
    TangentialCFG,
    TrueCFG,
)
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
from zsampling.plugins import registering
from zsampling.samplers import (
    W2SD,
    Z2,
    AsymmetryZigzag,
    ImplicitZigzag,
    Restart,
    Standard,
    Zigzag,
)
from zsampling.schedules import (
    AlignYourSteps,
    Beta,
    DDIMUniform,
    Exponential,
    FlowMatch,
    Karras,
    KLOptimal,
    LinearQuadratic,
    Normal,
    PolyExponential,
    Scheduler,
    SGMUniform,
    Simple,
    Uniform,
)
from zsampling.search import BestOfN, PathSearch, ZeroOrder
from zsampling.solvers.ancestral import EulerAncestral
from zsampling.solvers.ddpm import DDPM
from zsampling.solvers.deis import DEIS
from zsampling.solvers.dpm2 import DPM2
from zsampling.solvers.dpm2_ancestral import DPM2Ancestral
from zsampling.solvers.dpmpp_2m_sde import DPMPP2MSDE
from zsampling.solvers.dpmpp_2s import DPMSolverPP2S
from zsampling.solvers.dpmpp_2s_ancestral import DPMPP2SAncestral
from zsampling.solvers.dpmpp_3m_sde import DPMPP3MSDE
from zsampling.solvers.dpmpp_sde import DPMPPSDE
from zsampling.solvers.er_sde import ERSDE
from zsampling.solvers.gradient_estimation import GradientEstimation
from zsampling.solvers.heun import Heun
from zsampling.solvers.ipndm import IPNDM
from zsampling.solvers.lcm import LCM
from zsampling.solvers.lms import LMS
from zsampling.solvers.res_multistep import ResMultistep
from zsampling.solvers.unipc import UniPC
from zsampling.verifiers import ClipVerifier, DigitVerifier, ImageReward, ImplicitClassifier

BUILTINS: dict[Kind, tuple[type, ...]] = {
    "adapter": (
        AnalyticAdapter,
        DigitsAdapter,
        DigitPairsAdapter,
        ShapesAdapter,
        DiffusersAdapter,
        SD3Adapter,
        FluxAdapter,
        KDiffusionAdapter,
    ),
    "schedule": (
        Uniform,
        Karras,
        AlignYourSteps,
        Scheduler,
        FlowMatch,
        Exponential,
        PolyExponential,
        KLOptimal,
        Simple,
        Normal,
        SGMUniform,
        DDIMUniform,
        Beta,
        LinearQuadratic,
    ),
    "solver": (
        DDIM,
        Euler,
        DPMSolverPP2M,
        # deterministic solvers (zsampling.solvers)
        Heun,
        LMS,
        DPM2,
        DPMSolverPP2S,
        UniPC,
        DEIS,
        IPNDM,
        ResMultistep,
        GradientEstimation,
        # stochastic and ancestral solvers (zsampling.solvers)
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
    "guider": (
        CFG,
        APG,
        CFGZeroStar,
        TangentialCFG,
        TrueCFG,
        RescaledCFG,
        MagnitudeAwareGuidance,
        FrequencyDecoupledGuidance,
        AdaptiveProjectedMixGuidance,
        PAG,
        SEG,
        SLG,
        AutoGuidance,
        CFGPlusPlus,
    ),
    "sampler": (Standard, Zigzag, AsymmetryZigzag, Restart, W2SD, ImplicitZigzag, Z2),
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
    "verifier": (ImplicitClassifier, DigitVerifier, ClipVerifier, ImageReward),
    "search": (BestOfN, ZeroOrder, PathSearch),
}
"""zsampling's components by kind, in the order listings show them."""


PLUGIN = registering(BUILTINS)
"""The built-in plugin: one implementation of each kind's hook, as `registering` makes them."""
