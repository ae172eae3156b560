"""Observer components (``[[observers]]``): per-item observers a config can switch on."""

from zsampling.observers.step_log import StepLog

__all__ = ["StepLog"]
