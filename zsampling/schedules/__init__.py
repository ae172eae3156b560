"""Schedule components (``[schedule]``): the levels a run walks (the protocol:
`zsampling.core.schedule.Schedule`)."""

from zsampling.core.moved import moved
from zsampling.core.schedule import Schedule
from zsampling.schedules.ays import AlignYourSteps
from zsampling.schedules.diffusers import Scheduler
from zsampling.schedules.flow_match import FlowMatch
from zsampling.schedules.karras import Karras
from zsampling.schedules.uniform import Uniform

# Helpers of the 0.1.0 module zsampling/schedules.py, now in its submodules (deprecated).
__getattr__ = moved(__name__, "zsampling.schedules.uniform", "zsampling.schedules.karras")

__all__ = ["AlignYourSteps", "FlowMatch", "Karras", "Schedule", "Scheduler", "Uniform"]
