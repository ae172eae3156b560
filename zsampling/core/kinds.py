"""The component kinds and the protocol each must follow (what the registry checks plugins by)."""

from __future__ import annotations

from typing import Literal

from zsampling.core.events import ObserverComponent
from zsampling.core.guidance import GuiderComponent
from zsampling.core.metric import Metric
from zsampling.core.model import AdapterComponent, Patch
from zsampling.core.sampler import ReflectiveSampler
from zsampling.core.schedule import Schedule
from zsampling.core.search import SearchStrategy
from zsampling.core.solvers import Solver
from zsampling.core.verifier import Verifier

Kind = Literal[
    "adapter",
    "schedule",
    "solver",
    "guider",
    "sampler",
    "patch",
    "observer",
    "metric",
    "verifier",
    "search",
]

PROTOCOLS: dict[Kind, type] = {
    "adapter": AdapterComponent,
    "schedule": Schedule,
    "solver": Solver,
    "guider": GuiderComponent,
    "sampler": ReflectiveSampler,
    "patch": Patch,
    "observer": ObserverComponent,
    "metric": Metric,
    "verifier": Verifier,
    "search": SearchStrategy,
}
"""Kind -> protocol, in the order configs, listings and hooks present them."""

KINDS: tuple[Kind, ...] = tuple(PROTOCOLS)
