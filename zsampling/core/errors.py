"""Errors a user can act on.

Every error zsampling raises for bad input names the field, the value it got and what would be
valid, so that the CLI can print it as one paragraph (and exit with code 2) instead of a traceback.
Values are shown with `shown`, which bounds their length: a config can hold a million-item list or
an integer of 5000 digits, and neither may turn a message into a wall of text (or, for the integer,
into a ValueError of its own: Python refuses to print integers past 4300 digits).
"""

from __future__ import annotations

import reprlib
from typing import Any


class _Bounded(reprlib.Repr):
    """`reprlib.Repr` with integers summarized past ~40 digits (its own ``repr_int`` calls
    ``repr``, which raises past 4300 digits)."""

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() <= 130:
            return repr(x)
        digits = int(x.bit_length() * 0.30103) + 1
        return f"{'-' if x < 0 else ''}<an integer of about {digits} digits>"


_REPR = _Bounded()
_REPR.maxstring = _REPR.maxother = 120
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = _REPR.maxfrozenset = 8
_REPR.maxlevel = 3


def shown(value: Any) -> str:
    """``repr(value)`` bounded in length and depth, safe for integers of any size."""
    return _REPR.repr(value)


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (at most 300 characters): an exception in a sentence."""
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r})"
    lines = str(exc).strip().splitlines()
    first = lines[0][:300] if lines else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class ZSamplingError(Exception):
    """Base class: something the user (or a plugin author) can fix."""


class InvalidArgument(ZSamplingError, ValueError):
    """A value is outside what is valid; the message says which field, what value, what is valid."""

    def __init__(self, field: str, value: Any, valid: str) -> None:
        self.field = field
        self.value = value
        self.valid = valid
        super().__init__(f"{field} = {shown(value)} is invalid: {valid}")


class RunFailure(ZSamplingError):
    """Generation failed for a reason outside the config (memory, a plugin's bug)."""


class NonFiniteLatents(RunFailure, FloatingPointError):
    """A latent became NaN/inf: we stop rather than hand back a silently wrong sample."""


class ComponentFault(RunFailure):
    """A component broke its contract: it returned the wrong shape or dtype, or NaN.

    ``kind`` and ``name`` say which component (``sampler``, ``zigzag``); the run adds the plugin
    that registered it before the message reaches the user.
    """

    def __init__(self, kind: str, name: str, problem: str, message: str | None = None) -> None:
        self.kind = kind
        self.name = name
        self.problem = problem
        super().__init__(message or f"{kind} {name!r} {problem}")

    @classmethod
    def of(cls, kind: str, component: Any, problem: str) -> ComponentFault:
        """The fault of ``component``, named by its registry ``name``; a class from outside
        zsampling is named too (``sample()`` has no registry to say which plugin it is from;
        a run names the plugin instead)."""
        name = str(getattr(component, "name", type(component).__name__))
        kind_of = type(component)
        module = kind_of.__module__
        origin = (
            ""
            if module.split(".")[0] == "zsampling"
            else f" (class {module}.{kind_of.__qualname__})"
        )
        return cls(kind, name, problem, f"{kind} {name!r}{origin} {problem}")


def all_finite(x: Any) -> bool:
    """Whether every entry of tensor ``x`` is finite, in one reduction.

    NaN and inf propagate through a sum, so a finite sum (accumulated in float32, or float64 for
    float64 tensors) proves every entry finite; only a sum that is not finite is checked entry by
    entry (finite entries can overflow a sum). One reduction is the cheapest answer, but reading
    it is a host synchronisation on a GPU: the sampling path's own check does not use this
    (see `zsampling.core.finite`); the run's start and end (initial noise, a sampler's result) do.
    """
    import math

    import torch

    # float32 and float64 sum in their own dtype; half precision sums in float32 (no overflow).
    total = x.sum() if x.dtype in (torch.float32, torch.float64) else x.sum(dtype=torch.float32)
    if math.isfinite(float(total)):
        return True
    return bool(torch.isfinite(x).all())


def check_finite(x: Any, field: str, hint: str = "") -> None:
    """Raise `NonFiniteLatents` naming `field` when tensor `x` has NaN or inf entries."""
    import torch

    if not all_finite(x):
        bad = int((~torch.isfinite(x)).sum())
        msg = f"{field} has {bad} non-finite value(s) (NaN or inf) out of {x.numel()}"
        raise NonFiniteLatents(msg + (f"; {hint}" if hint else ""))
