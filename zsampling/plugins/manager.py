"""Loading plugins: built-ins first, then every entry point in group ``zsampling``.

Hooks are called through pluggy, so ``tryfirst``/``trylast``, wrappers, blocking
(``pm.set_blocked``) and tracing behave as in any pluggy application; plain implementations run
in load order (built-ins first). Each plugin is isolated, and every error attributed to it:

- an import failure of any kind (only ``KeyboardInterrupt`` is let through) fails that plugin;
- a hook implementation no hookspec defines (a typo such as ``zsampling_register_sampler``)
  fails its plugin, instead of every command as ``pm.check_pending()`` would;
- each implementation runs with its plugin recorded, so a component belongs to the plugin that
  registered it; an exception or a refused component fails that plugin and the hook goes on (a
  hook *wrapper* that raises passes the call through as if it were not there).

``zsampling plugins`` lists failed plugins with their reason. ``ZSAMPLING_BLOCK_PLUGINS=a,b``
blocks plugins by name (they are not imported); ``ZSAMPLING_TRACE_PLUGINS=1`` prints pluggy's
trace of every hook call to stderr.
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
    for info, plugin in reversed(loaded):
        if info.error is None:
            _register(pm, info, plugin)
    registry.plugins.extend(info for info, _ in loaded)
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


def _register(pm: pluggy.PluginManager, info: PluginInfo, plugin: Any) -> None:
    """Register ``plugin`` as an `_Attributed` stand-in, unless pluggy refuses it or it has a
    hook no hookspec defines (what ``pm.check_pending()`` checks, failing this plugin alone)."""
    try:
        stand_in = _Attributed(pm, plugin, info)
        if stand_in.unknown:
            _fail(
                info,
                f"not loaded: {', '.join(stand_in.unknown)} is not a zsampling hook (hooks: "
                f"{', '.join(HOOKS.values())}); fix the name, or mark an optional hook "
                "@hookimpl(optionalhook=True)",
            )
            return
        pm.register(stand_in, name=info.name)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        _fail(info, f"registration failed: {describe(exc)}")


class _Attributed:
    """A plugin as pluggy sees it: the same hook implementations with the same options, each
    wrapped to run with its plugin recorded (see `_attributed`). ``__wrapped__`` is the plugin;
    ``unknown`` lists its implementations of hooks that have no spec (and are not optional)."""

    def __init__(self, pm: pluggy.PluginManager, plugin: Any, info: PluginInfo) -> None:
        self.__wrapped__ = plugin
        self._info = info
        self.unknown: list[str] = []
        for attr in dir(plugin):
            opts = pm.parse_hookimpl_opts(plugin, attr)
            if opts is None:
                continue
            caller = getattr(pm.hook, attr, None)
            if not (caller is not None and caller.has_spec()) and not opts.get("optionalhook"):
                self.unknown.append(attr)
            wrapper = bool(opts.get("wrapper") or opts.get("hookwrapper"))
            original = getattr(plugin, attr)
            if wrapper and not inspect.isgeneratorfunction(original):
                raise TypeError(
                    f"{attr} is declared a hook wrapper (wrapper=True or hookwrapper=True) but is "
                    "not a generator function"
                )
            function = _attributed(original, info, wrapper)
            setattr(function, f"{pm.project_name}_impl", opts)
            setattr(self, attr, function)

    def __repr__(self) -> str:
        return f"<zsampling plugin {self._info.name!r}: {self.__wrapped__!r}>"


def _attributed(function: Callable[..., Any], info: PluginInfo, wrapper: bool) -> Any:
    """``function`` running with its plugin recorded. An error of its own (``KeyboardInterrupt``
    aside) fails its plugin and is not raised: the hook goes on without it, a plain
    implementation returning None, a wrapper passing the call through as if it were not there."""
    hook = getattr(function, "__name__", "hook")
    what = "hook wrapper" if wrapper else "hook"

    def failed(exc: BaseException) -> None:
        if isinstance(exc, KeyboardInterrupt):
            raise exc
        if isinstance(exc, PluginError):  # a component `register` refused: its own message
            _fail(info, str(exc))
        else:
            _fail(info, f"plugin {info.name!r} {what} {hook} raised {describe(exc)}")

    @functools.wraps(function)
    def plain(*args: Any, **kwargs: Any) -> Any:
        with _running(info):
            try:
                return function(*args, **kwargs)
            except BaseException as exc:
                failed(exc)
        return None

    @functools.wraps(function)
    def wrapping(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        try:
            with _running(info):
                inner = function(*args, **kwargs)
                first = next(inner)
        except StopIteration:
            failed(RuntimeError(f"hook wrapper {hook} did not yield"))
            return (yield)
        except BaseException as exc:
            failed(exc)
            return (yield)
        sent, thrown = None, None
        try:
            sent = yield first
        except BaseException as exc:  # the hook failed: the wrapper sees it, as pluggy's would
            thrown = exc
        with _running(info):
            try:
                inner.throw(thrown) if thrown is not None else inner.send(sent)
                failed(RuntimeError(f"hook wrapper {hook} has a second yield"))
                inner.close()
            except StopIteration as stop:
                return stop.value
            except BaseException as exc:
                if exc is thrown:
                    raise
                failed(exc)
        if thrown is not None:
            raise thrown
        return sent

    return wrapping if wrapper else plain


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
    """Call one hook through pluggy, leaving out plugins that already failed.

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

    failed = [pm.get_plugin(p.name) for p in registry.plugins if p.error]
    pm.subset_hook_caller(hook_name, [p for p in failed if p is not None])(register=register)


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
