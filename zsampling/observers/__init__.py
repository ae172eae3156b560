"""Observer components (``[[observers]]``): per-item observers a config can switch on."""

from zsampling.core.moved import moved
from zsampling.observers.step_log import StepLog

# Names of the 0.1.0 module zsampling/observers.py, moved to the core (deprecated).
__getattr__ = moved(__name__, "zsampling.core.events")

__all__ = ["StepLog"]
