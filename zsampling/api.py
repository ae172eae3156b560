"""The stable API: every name a plugin or a script needs, importable from one module.

Write plugins against ``zsampling.api`` (or the top level ``zsampling``, which re-exports all of
it plus the built-in components). The modules behind these names (``zsampling.core.*``,
``zsampling.plugins.*``) are where the code lives and may move; a name here keeps its import path,
and a name that ever leaves it keeps working for at least one minor version with a
``DeprecationWarning`` naming its new path (CHANGELOG.md lists them).

This is the one list of the public API: every public name of this module is an import below
(no ``__all__``, no other definitions: ``from zsampling.api import *`` takes exactly these), and
``zsampling/__init__.py`` derives its exports from them and from the built-in components
(`zsampling.plugins.builtins.BUILTINS`). tests/test_public_api.py holds that.
"""

# For plugins: the component base, each kind's protocol (what the registry checks a plugin
# against), what components receive and return, the errors, the hook marker. For scripts:
# sample(), generate(), and running a config file.
from zsampling.core.component import Component
from zsampling.core.errors import (
    ComponentFault,
    InvalidArgument,
    NonFiniteLatents,
    RunFailure,
    ZSamplingError,
)
from zsampling.core.events import (
    ObservedItem,
    Observer,
    ObserverComponent,
    StepEvent,
    TrajectoryRecorder,
)
from zsampling.core.guidance import (
    EvaluationCounter,
    GuidanceContext,
    Guider,
    GuiderComponent,
)
from zsampling.core.levels import Process, TimestepTable
from zsampling.core.metric import Metric
from zsampling.core.model import AdapterComponent, GuidanceEmbedding, ModelAdapter, Patch
from zsampling.core.path import SamplingPath
from zsampling.core.prediction import Prediction
from zsampling.core.rules import GuidanceCall, GuidanceRule
from zsampling.core.sampler import ReflectiveSampler, check_reflection_steps
from zsampling.core.sampling import SampleResult, initial_noise, sample
from zsampling.core.schedule import Schedule
from zsampling.core.search import (
    Candidate,
    SearchResult,
    SearchStrategy,
    Trials,
    candidate_seed,
    search_sample,
)
from zsampling.core.solvers import History, LevelPoint, Solver, ddim_step
from zsampling.core.verifier import Verifier
from zsampling.integrations.diffusers import generate
from zsampling.plugins import hookimpl
from zsampling.plugins.hookspecs import Register
from zsampling.plugins.manager import build_registry, default_registry
from zsampling.plugins.registry import PluginError, Registry
from zsampling.runs.config import RunConfig, load_config
from zsampling.runs.run import ItemResult, RunItem, execute
