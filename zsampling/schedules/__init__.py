"""Schedule components (``[schedule]``): the levels a run walks (the protocol:
`zsampling.core.schedule.Schedule`)."""

from zsampling.core.moved import moved
from zsampling.core.schedule import Schedule
from zsampling.schedules.ays import AlignYourSteps
from zsampling.schedules.beta import Beta
from zsampling.schedules.diffusers import Scheduler
from zsampling.schedules.exponential import Exponential, PolyExponential
from zsampling.schedules.flow_match import FlowMatch
from zsampling.schedules.karras import Karras
from zsampling.schedules.kl_optimal import KLOptimal
from zsampling.schedules.linear_quadratic import LinearQuadratic
from zsampling.schedules.normal import Normal, SGMUniform
from zsampling.schedules.simple import DDIMUniform, Simple
from zsampling.schedules.uniform import Uniform

# Helpers of the 0.1.0 module zsampling/schedules.py, now in its submodules (deprecated).
__getattr__ = moved(__name__, "zsampling.schedules.uniform", "zsampling.schedules.karras")

__all__ = [
    "AlignYourSteps",
    "Beta",
    "DDIMUniform",
    "Exponential",
    "FlowMatch",
    "KLOptimal",
    "Karras",
    "LinearQuadratic",
    "Normal",
    "PolyExponential",
    "SGMUniform",
    "Schedule",
    "Scheduler",
    "Simple",
    "Uniform",
]
