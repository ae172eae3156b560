"""Every hook zsampling calls. Built-ins implement them exactly as third-party plugins do.

Each hook receives a ``register`` callback and calls it once per component class it provides::

    from zsampling.plugins import hookimpl

    @hookimpl
    def zsampling_register_samplers(register):
        register(MySampler)

A component class is a pydantic model (its fields are the settings a config file may set, with
``extra="forbid"``) with a ``name`` class attribute and the method of its kind (see each hook).
All hooks are plain (not ``firstresult``): every plugin's implementation is called, through
pluggy, in load order (built-ins first) unless marked ``tryfirst``/``trylast``; a
``wrapper=True`` implementation wraps the whole call. See `zsampling.plugins.manager`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

from zsampling.core.kinds import KINDS, Kind

hookspec = pluggy.HookspecMarker("zsampling")

Register = Callable[[type[Any]], None]

HOOKS: dict[Kind, str] = {kind: f"zsampling_register_{kind}s" for kind in KINDS}
HOOKS["patch"] = "zsampling_register_patches"
HOOKS["search"] = "zsampling_register_searches"
"""The hook each kind of component is registered through (in the order hooks are called)."""


@hookspec
def zsampling_register_adapters(register: Register) -> None:
    """Model adapters: ``load(self) -> ModelAdapter`` builds the model (``[model] use = ...``)."""


@hookspec
def zsampling_register_schedules(register: Register) -> None:
    """Schedules: a ``steps`` field and ``sigmas(self, model) -> Tensor`` (``[schedule]``)."""


@hookspec
def zsampling_register_solvers(register: Register) -> None:
    """Solvers: ``step(self, x, pred, src, dst, history) -> Tensor``, with an optional sixth
    parameter ``ctx`` (a `StepContext`) for more (``[solver]``)."""


@hookspec
def zsampling_register_guiders(register: Register) -> None:
    """Guiders: ``bind(self, model, cond, uncond, counter=None)`` returns the callable
    ``guider(x, sigma, scale, context=None) -> Prediction`` (``[guider]``); most derive from
    `zsampling.core.rules.GuidanceRule` and write only ``combine`` (docs/plugins.md)."""


@hookspec
def zsampling_register_samplers(register: Register) -> None:
    """Reflective samplers: ``sample(self, x, path) -> Tensor`` (``[sampler]``)."""


@hookspec
def zsampling_register_patches(register: Register) -> None:
    """Patches: ``apply(self, model) -> ModelAdapter``, in config order (``[[model.patches]]``)."""


@hookspec
def zsampling_register_observers(register: Register) -> None:
    """Observers: ``bind(self, item) -> Observer`` per generated item (``[[observers]]``)."""


@hookspec
def zsampling_register_metrics(register: Register) -> None:
    """Metrics: ``score(self, model, latents, prompts) -> Tensor`` per item (``[[metrics]]``)."""


@hookspec
def zsampling_register_verifiers(register: Register) -> None:
    """Verifiers: ``score(self, model, latents, prompts) -> Tensor`` per candidate, higher is
    better: what a search optimises (``[search.verifier]``; docs/search.md)."""


@hookspec
def zsampling_register_searches(register: Register) -> None:
    """Search strategies: ``search(self, trials)`` proposes starting noises to ``trials.run``
    (`zsampling.core.search.Trials`); each item keeps its best-scoring candidate (``[search]``)."""
