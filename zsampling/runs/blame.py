"""Who failed, and while doing what: an unexpected exception as one paragraph naming both.

Every call a run makes into a component (an adapter's ``load``, a patch's ``apply``, a prompt's
encoding, a sampler's ``sample``, a metric's ``score``, an observer's ``bind``, the model's
``decode``) happens inside `Blame.stage`. An exception there that is not already one of
zsampling's own messages becomes a `RunFailure` naming the stage and the culprit:

- the culprit is the component whose code raised: the traceback is read from the deepest frame
  up, and the first frame in a third-party plugin's source (the file of a registered class, or
  the folder of the package it comes from) names that plugin and, where the frame's qualified name
  says so, its component. With no plugin frame in the traceback, the component that was called
  is named (``sampler 'zigzag' (built in)``): a core error never blames a plugin.
- frames are matched by resolved file path, never by substring, so a plugin package named
  ``samplers`` is not blamed for ``zsampling/samplers/zigzag.py``;
- a `ComponentFault` (a component's output broke its contract, found by a check) gets the plugin
  of the component it names;
- an out-of-memory error (as `zsampling.runs.backoff.is_out_of_memory` defines it, the same test
  that halves a batch) gets advice on what to lower instead of a culprit.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zsampling.core.errors import ComponentFault, RunFailure, ZSamplingError, one_line
from zsampling.plugins.registry import Registered, Registry
from zsampling.runs.backoff import is_out_of_memory

BUILTIN = "zsampling"
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Culprit:
    """A component (kind and name, when known) and the plugin that registered it."""

    kind: str | None
    name: str | None
    plugin: str

    def __str__(self) -> str:
        if self.kind is None:
            return f"plugin {self.plugin!r}"
        origin = "built in" if self.plugin == BUILTIN else f"plugin {self.plugin!r}"
        return f"{self.kind} {self.name!r} ({origin})"


def _culprit(found: Registered) -> Culprit:
    return Culprit(found.kind, found.name, found.plugin)


class Blame:
    """Attribution for one run: the registry's components by source location, and the run's
    models by name (a `ComponentFault` of kind ``model`` names the run's model, ``main`` or
    ``weak``, whose prediction broke the contract: its adapter or outermost patch is blamed)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._models: dict[int, Culprit] = {}
        self._named: dict[str, Culprit] = {}
        self._roots: list[tuple[str, list[Registered]]] = []
        by_root: dict[str, list[Registered]] = {}
        for kind in registry.components.values():
            for comp in kind.values():
                if comp.plugin == BUILTIN:
                    continue
                for root in _source_roots(comp.cls):
                    by_root.setdefault(root, []).append(comp)
        self._roots = sorted(by_root.items(), key=lambda kv: -len(kv[0]))  # deepest first

    def of(self, kind: str, component: Any) -> Culprit:
        """The culprit for a configured component (by its registered name)."""
        return self._registered(kind, getattr(component, "name", type(component).__name__))

    def _registered(self, kind: str, name: Any) -> Culprit:
        found = self.registry.lookup(kind, name) if kind in self.registry.components else None
        return _culprit(found) if found is not None else Culprit(kind, str(name), "unknown")

    def in_traceback(self, exc: BaseException, called: Culprit) -> Culprit | None:
        """The plugin component deepest in ``exc``'s traceback, or None when no plugin's code is
        in it.

        Frames are read from the deepest up. A frame of a loaded model (its ``self`` is one, see
        `model_loaded`) names that model's adapter; a frame in a registered class's code (its
        qualified name starts with the class's) names that component. A frame elsewhere in a
        plugin's source (a helper function) only marks the plugin: the first frame above it
        that names one of its components wins, else the component called when it is that
        plugin's, else the plugin alone.
        """
        plugin_only: str | None = None
        for frame, _ in reversed(list(traceback.walk_tb(exc.__traceback__))):
            owner = self._models.get(id(frame.f_locals.get("self")))
            if owner is not None and owner.plugin != BUILTIN:
                return owner
            filename = os.path.realpath(frame.f_code.co_filename)
            for root, comps in self._roots:
                if filename == root or filename.startswith(root + os.sep):
                    qualname = getattr(frame.f_code, "co_qualname", "")
                    for comp in comps:
                        if qualname.startswith(comp.cls.__qualname__ + "."):
                            return _culprit(comp)
                    if plugin_only is None and len({c.plugin for c in comps}) == 1:
                        plugin_only = comps[0].plugin
        if plugin_only is None:
            return None
        return called if called.plugin == plugin_only else Culprit(None, None, plugin_only)

    def model_loaded(self, model: Any, culprit: Culprit, name: str | None = None) -> None:
        """Remember a loaded model (the run's model ``name``): frames of its methods, and faults
        of its predictions, name ``culprit`` (its adapter, or the outermost patch that wrapped
        it)."""
        self._models[id(model)] = culprit
        if name is not None:
            self._named[name] = culprit

    def fault(self, fault: ComponentFault) -> Culprit:
        """The culprit a `ComponentFault` names (a model's prediction: its adapter or patch)."""
        if fault.kind == "model" and fault.name in self._named:
            return self._named[fault.name]
        return self._registered(fault.kind, fault.name)

    @contextmanager
    def stage(self, doing: str, called: Culprit) -> Iterator[None]:
        """Run a call into ``called``; unexpected exceptions become a `RunFailure` (see module)."""
        try:
            yield
        except ComponentFault as fault:
            who = self.fault(fault)
            raise RunFailure(f"{who} {fault.problem}, while {doing}") from fault
        except (ZSamplingError, KeyboardInterrupt, GeneratorExit):
            raise
        except BaseException as exc:  # SystemExit from plugin code too: it is not ours to exit
            raise failure(exc, doing, self.in_traceback(exc, called) or called) from exc


def failure(exc: BaseException, doing: str, culprit: Culprit | str) -> RunFailure:
    """One paragraph for an exception: out-of-memory advice, or who failed doing what."""
    text = one_line(exc)
    if is_out_of_memory(exc):
        return RunFailure(
            f"out of memory while {doing} ({text}). Lower run.batch_size, the resolution or the "
            "number of rows per call (guider.skip_unused_branches = true), use dtype = "
            "'float16' or 'bfloat16', or free the device for this run."
        )
    return RunFailure(f"{culprit} failed while {doing}: {text}")


def _source_roots(cls: type) -> list[str]:
    """Where a plugin's code lives: its top-level package's folder(s), or its module's file."""
    module = sys.modules.get(cls.__module__)
    if module is None:
        return []
    top = sys.modules.get(cls.__module__.split(".")[0], module)
    paths = list(getattr(top, "__path__", []) or [])
    if not paths and getattr(module, "__file__", None):
        paths = [module.__file__]
    roots = []
    for p in paths:
        real = os.path.realpath(p)
        if real == str(PACKAGE_ROOT) or real.startswith(str(PACKAGE_ROOT) + os.sep):
            continue  # a plugin class defined inside zsampling: frames there are the core's
        roots.append(real)
    return roots
