"""Loading plugins: built-ins first, then every entry point in group ``zsampling``.

Hooks are called through pluggy (``pm.hook.zsampling_register_samplers(register=...)``), so
``tryfirst``/``trylast``, hook wrappers, blocking (``pm.set_blocked``) and tracing behave as in
any pluggy application. Plain implementations run in load order (built-ins first) unless marked
``tryfirst``/``trylast``.

Every plugin is isolated from the others, and every error is attributed to the plugin it came
from:

- an import failure of any kind (``SystemExit`` and other ``BaseException`` subclasses too; only
  ``KeyboardInterrupt`` is let through) marks that plugin failed;
- a plugin with a hook implementation that no hookspec defines (a typo such as
  ``zsampling_register_sampler``) is not loaded, and reported, instead of failing every command as
  ``pm.check_pending()`` would;
- each hook implementation runs with its plugin recorded, so a component is registered under the
  plugin that registered it, and an exception (or a refused component) marks that plugin failed
  while the same hook goes on to the next plugin. A hook *wrapper* that raises is left out and the
  hook is called again for the plugins that did not run yet.

``zsampling plugins`` lists failed plugins with their reason. Two environment variables help
plugin authors: ``ZSAMPLING_BLOCK_PLUGINS=a,b`` blocks plugins by name (they are not imported),
``ZSAMPLING_TRACE_PLUGINS=1`` prints pluggy's trace of every hook call to stderr.
"""

from __future__ import annotations

import contextvars
import functools
import importlib.metadata as md
import inspect
import os
import sys
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import pluggy

from zsampling.core.kinds import Kind
from zsampling.core.version import VERSION
from zsampling.plugins import hookspecs
from zsampling.plugins.hookspecs import HOOKS
from zsampling.plugins.registry import PluginError, PluginInfo, Registry

ENTRY_POINT_GROUP = "zsampling"
PROJECT = "zsampling"
BLOCK_ENV = "ZSAMPLING_BLOCK_PLUGINS"
TRACE_ENV = "ZSAMPLING_TRACE_PLUGINS"

_CURRENT: contextvars.ContextVar[PluginInfo | None] = contextvars.ContextVar(
    "zsampling_plugin", default=None
)
"""The plugin whose hook implementation is running (who a ``register`` call comes from)."""


def _version() -> str:
    try:
        return md.version("zsampling")
    except md.PackageNotFoundError:  # running from a source tree
        return VERSION


def describe(exc: BaseException) -> str:
    """``TypeName: message`` on one line (``SystemExit: 3`` for an exit code)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _fail(info: PluginInfo, message: str) -> None:
    """Record the first error of a plugin (later ones are usually its consequences)."""
    if info.error is None:
        info.error = message


def build_registry(
    extra_plugins: Iterable[tuple[str, Any]] = (),
    entry_points: bool = True,
    plugin_manager: pluggy.PluginManager | None = None,
) -> Registry:
    """A fresh registry: built-ins, installed entry points, then ``extra_plugins`` (tests).

    ``plugin_manager`` lets a caller prepare pluggy first (block names with ``set_blocked``,
    ``enable_tracing``, add hook call monitoring); its project name must be ``zsampling``.
    """
    from zsampling.plugins import builtins

    pm = plugin_manager or pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in filter(None, (n.strip() for n in os.environ.get(BLOCK_ENV, "").split(","))):
        pm.set_blocked(name)
    if os.environ.get(TRACE_ENV):
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    registry = Registry()
    loaded: list[tuple[PluginInfo, Any]] = [
        (PluginInfo("zsampling", _version(), "built-in"), builtins.PLUGIN)
    ]
    if entry_points:
        loaded += _load_entry_points(pm)
    loaded += [
        (PluginInfo(name, "local", "registered in-process"), plugin)
        for name, plugin in extra_plugins
    ]
    loaded = [(info, plugin) for info, plugin in loaded if not pm.is_blocked(info.name)]
    # pluggy calls plain implementations last-registered first: register in reverse load order
    # so that they run in load order (built-ins first, and the first to claim a name keeps it).
    stand_ins = {
        info.name: _register(pm, info, plugin)
        for info, plugin in reversed(loaded)
        if info.error is None
    }
    for info, _ in loaded:
        registry.plugins.append(info)
        if stand_ins.get(info.name) is not None:
            _check_hook_names(pm, info, stand_ins[info.name])
    offers: list[_Offer] = []
    for kind, hook_name in HOOKS.items():
        _call_hook(pm, registry, kind, hook_name, offers)
    _claim(registry, offers)
    return registry


def _load_entry_points(pm: pluggy.PluginManager) -> list[tuple[PluginInfo, Any]]:
    """Import every entry point that is not blocked; a failed import gives ``(info, None)``."""
    loaded: list[tuple[PluginInfo, Any]] = []
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        if pm.is_blocked(ep.name):
            continue
        dist = ep.dist
        info = PluginInfo(
            ep.name,
            dist.version if dist else "?",
            f"entry point {ep.value}" + (f" in {dist.name}" if dist else ""),
        )
        plugin = None
        try:
            plugin = ep.load()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too: a broken plugin must not end the command
            info.error = f"import failed: {describe(exc)}"
        loaded.append((info, plugin))
    return loaded


def _register(pm: pluggy.PluginManager, info: PluginInfo, plugin: Any) -> Any:
    """Register ``plugin`` as an `_Attributed` stand-in; None if pluggy refuses it."""
    try:
        stand_in = _Attributed(pm, plugin, info)
        pm.register(stand_in, name=info.name)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        _fail(info, f"registration failed: {describe(exc)}")
        return None
    return stand_in


class _Attributed:
    """A plugin as pluggy sees it: the same hook implementations with the same options, each
    wrapped to run with its plugin recorded (see `_attributed`). ``__wrapped__`` is the plugin."""

    def __init__(self, pm: pluggy.PluginManager, plugin: Any, info: PluginInfo) -> None:
        self.__wrapped__ = plugin
        self._info = info
        marker = f"{pm.project_name}_impl"
        for attr in dir(plugin):
            opts = pm.parse_hookimpl_opts(plugin, attr)
            if opts is None:
                continue
            wrapper = bool(opts.get("wrapper") or opts.get("hookwrapper"))
            original = getattr(plugin, attr)
            if wrapper and not inspect.isgeneratorfunction(original):
                raise TypeError(
                    f"{attr} is declared a hook wrapper (wrapper=True or hookwrapper=True) but is "
                    "not a generator function"
                )
            function = _attributed(original, info, wrapper)
            setattr(function, marker, opts)
            setattr(self, attr, function)

    def __repr__(self) -> str:
        return f"<zsampling plugin {self._info.name!r}: {self.__wrapped__!r}>"


def _check_hook_names(pm: pluggy.PluginManager, info: PluginInfo, plugin: Any) -> None:
    """What ``pm.check_pending()`` checks, for one plugin: unknown hooks fail it, not everyone."""
    unknown = sorted(
        caller.name
        for caller in pm.get_hookcallers(plugin) or []
        if not caller.has_spec()
        and any(i.plugin is plugin and not i.optionalhook for i in caller.get_hookimpls())
    )
    if unknown:
        pm.unregister(plugin)
        _fail(
            info,
            f"not loaded: {', '.join(unknown)} is not a zsampling hook (hooks: "
            f"{', '.join(HOOKS.values())}); fix the name, or mark an optional hook "
            "@hookimpl(optionalhook=True)",
        )


class _HookCall:
    """One call of one hook: which plugins' implementations ran, who raised what."""

    def __init__(self) -> None:
        self.ran: set[str] = set()
        self.blame: dict[int, PluginInfo] = {}


_CALL: contextvars.ContextVar[_HookCall | None] = contextvars.ContextVar(
    "zsampling_hook_call", default=None
)


def _attributed(function: Callable[..., Any], info: PluginInfo, wrapper: bool) -> Any:
    """``function`` running with its plugin recorded.

    A plain implementation's error is recorded on its plugin and the hook goes on to the next
    plugin. A wrapper's own error (not one merely passing through it) is tagged with its plugin
    and re-raised, so the caller can leave that plugin out and call the hook again.
    """
    if not wrapper:

        @functools.wraps(function)
        def plain(*args: Any, **kwargs: Any) -> Any:
            call = _CALL.get()
            if call is not None:
                call.ran.add(info.name)
            with _running(info):
                try:
                    return function(*args, **kwargs)
                except KeyboardInterrupt:
                    raise
                except PluginError as exc:
                    _fail(info, str(exc))
                except BaseException as exc:
                    hook = _hook_of(function)
                    _fail(info, f"plugin {info.name!r} hook {hook} raised {describe(exc)}")
            return None

        return plain

    def blamed(exc: BaseException) -> BaseException:
        call = _CALL.get()
        if call is not None and not isinstance(exc, KeyboardInterrupt):
            call.blame[id(exc)] = info
        return exc

    @functools.wraps(function)
    def wrapping(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        try:
            with _running(info):
                inner = function(*args, **kwargs)
                value = next(inner)
        except StopIteration:
            raise blamed(RuntimeError(f"hook wrapper {_hook_of(function)} did not yield")) from None
        except BaseException as exc:
            raise blamed(exc) from None
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                inner.close()
                raise
            except BaseException as thrown:  # the hook failed: let the wrapper see it
                try:
                    with _running(info):
                        value = inner.throw(thrown)
                except StopIteration as stop:
                    return stop.value
                except BaseException as exc:
                    raise (exc if exc is thrown else blamed(exc)) from None
                continue
            try:
                with _running(info):
                    value = inner.send(sent)
            except StopIteration as stop:
                return stop.value
            except BaseException as exc:
                raise blamed(exc) from None

    return wrapping


def _hook_of(function: Callable[..., Any]) -> str:
    return getattr(function, "__name__", "hook")


@contextmanager
def _running(info: PluginInfo) -> Iterator[None]:
    token = _CURRENT.set(info)
    try:
        yield
    finally:
        _CURRENT.reset(token)


_Offer = tuple[Kind, Any, PluginInfo, str]
"""A component a plugin's hook registered: kind, class, plugin, hook."""


def _call_hook(
    pm: pluggy.PluginManager, registry: Registry, kind: Kind, hook_name: str, offers: list[_Offer]
) -> None:
    """Call one hook through pluggy, leaving out plugins that already failed; a wrapper that
    raises is left out too and the hook called again for the plugins that did not run yet.

    ``register`` checks each class's shape at once (a misfit fails its plugin in its hook) and
    adds it to ``offers``; names are claimed by `_claim` once every hook has run."""

    def register(cls: Any) -> None:
        info = _CURRENT.get()
        if info is None:
            raise PluginError(f"register() of {hook_name} was called outside the hook")
        try:
            registry.check(kind, cls, info, hook_name)
        except PluginError as exc:
            _fail(info, str(exc))
            raise
        offers.append((kind, cls, info, hook_name))

    call = _HookCall()
    token = _CALL.set(call)
    try:
        while True:
            skip = {p.name for p in registry.plugins if p.error} | call.ran
            plugins = [pm.get_plugin(name) for name in skip]
            caller = pm.subset_hook_caller(hook_name, [p for p in plugins if p is not None])
            try:
                caller(register=register)
                break
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                culprit = call.blame.get(id(exc))
                if culprit is None:
                    raise
                message = f"plugin {culprit.name!r} hook wrapper {hook_name} raised {describe(exc)}"
                _fail(culprit, message)
    finally:
        _CALL.reset(token)


def _claim(registry: Registry, offers: list[_Offer]) -> None:
    """Register the offers of the plugins that did not fail, in the order they were made.

    The first plugin refused (a name an earlier offer holds) fails and contributes nothing, so
    the claims start over without it, until every claim holds: a name is never held by a failed
    plugin, whichever hook it failed in (docs/plugins.md: "taken back")."""
    while True:
        registry.clear()
        for kind, cls, info, hook in offers:
            if info.error is None:
                try:
                    registry.add(kind, cls, info, hook)
                except PluginError as exc:
                    _fail(info, str(exc))
                    break
        else:
            return


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    """The registry of this process (built once)."""
    return build_registry()
