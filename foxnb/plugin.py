"""foxnb plugins: packages that add engines, hooks, configuration sections and strategies.

A plugin is a callable published under the entry point group ``foxnb.plugins``::

    # pyproject.toml of the plugin's distribution
    [project.entry-points."foxnb.plugins"]
    cython = "foxnb_cython:plugin"

    # foxnb_cython/__init__.py
    def plugin(ctx):                 # ctx: foxnb.plugin.PluginContext
        ctx.add_strategy(CythonStrategy())

    plugin.FOXNB_PLUGIN_API = 1      # the plugin API version it was written for

Plugins are loaded lazily and once: at the first notebook cell after ``%load_ext foxnb``,
or at the first :func:`plugins` call (or the first use of a strategy no built-in provides);
importing foxnb loads none. A plugin that fails to import or raises is one
:class:`~foxnb.errors.FoxnbWarning` naming it (never an import error), and whatever it
registered before failing is removed. A plugin declaring another API version than
:data:`PLUGIN_API` (or none) is not loaded, with one warning. The configuration knobs
``plugins_disabled`` (a list of names) and ``disable_plugin_autoload``
(``FOXNB_DISABLE_PLUGIN_AUTOLOAD=1``) keep plugins out. :func:`plugins` lists each with its
status: ``loaded``, ``disabled``, ``incompatible`` or ``failed`` and the reason.
"""

import threading
import warnings
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol

from foxnb.errors import FoxnbWarning

__all__ = ["BUILTIN_STRATEGIES", "GROUP", "PLUGIN_API", "PluginContext", "PluginFunction",
           "PluginInfo", "PluginList", "StrategyProvider", "config_sections", "load_plugins",
           "loaded", "plugins", "strategy_provider", "strategy_providers"]

#: The entry point group plugins are published under.
GROUP = "foxnb.plugins"
#: The plugin API version; a plugin declares the one it needs as ``FOXNB_PLUGIN_API``.
PLUGIN_API = 1
#: The strategies foxnb itself provides (``foxnb.compare``'s names): a plugin cannot take one.
BUILTIN_STRATEGIES = ("numba", "python", "jit", "aot", "auto")


class PluginFunction(NamedTuple):
    """A function handed to a strategy provider: its name, source and globals."""

    name: str
    source: str
    globals: Mapping[str, Any]


class StrategyProvider(Protocol):
    """A strategy from a plugin, usable by ``foxnb.compare`` (``auto`` puts in place only
    code numba can call, so it leaves plugin strategies out).

    Attributes
    ----------
    name : str
        The strategy's name (``foxnb.compare(f, ..., strategies=[..., name])``).
    """

    name: str

    def build(self, function: PluginFunction, argtypes: tuple[Any, ...]) -> Callable[..., Any]:
        """Return a callable computing ``function`` for arguments of numba types ``argtypes``
        (the signature recorded from real calls). Raising means "not for this signature"."""
        ...


class PluginInfo(NamedTuple):
    """One plugin: its entry point name, where it comes from, its status and the reason."""

    name: str
    value: str  # "module:attr"
    distribution: str  # "name version", or "" when unknown
    status: str  # "loaded", "disabled", "incompatible", "failed"
    reason: str = ""
    provides: tuple[str, ...] = ()  # e.g. ("strategy cython", "hook compile")


class PluginList(list[PluginInfo]):
    """:func:`plugins`' result: a list with a readable ``str`` and an HTML table."""

    def __str__(self) -> str:
        if not self:
            return "no foxnb plugins installed"
        return "\n".join(f"{p.name:<16} {p.status:<12} {p.distribution or p.value}"
                         f"{'  ' + p.reason if p.reason else ''}"
                         f"{'  [' + ', '.join(p.provides) + ']' if p.provides else ''}"
                         for p in self)

    def _repr_html_(self) -> str:
        import html

        rows = "".join(f"<tr><td>{html.escape(p.name)}</td><td>{html.escape(p.status)}</td>"
                       f"<td>{html.escape(p.distribution or p.value)}</td>"
                       f"<td>{html.escape(p.reason)}</td>"
                       f"<td>{html.escape(', '.join(p.provides))}</td></tr>" for p in self)
        return ("<table class='foxnb-plugins'><tr><th>plugin</th><th>status</th><th>from</th>"
                f"<th>reason</th><th>provides</th></tr>{rows}</table>")


_lock = threading.RLock()
_loaded = [False]
_infos: list[PluginInfo] = []
_sections: dict[str, Any] = {}
_strategies: dict[str, StrategyProvider] = {}
_contexts: "list[PluginContext]" = []


class PluginContext:
    """What a plugin may register; passed to the plugin's callable.

    Everything registered through one context is removed again if the plugin fails.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.api = PLUGIN_API
        self._undo: list[Callable[[], None]] = []
        self.provides: list[str] = []

    def add_engine(self, engine: Any, *, replace: bool = False) -> None:
        """Register an engine (:class:`foxnb.engines.base.Engine`'s protocol)."""
        from foxnb.engines.base import register_engine, unregister_engine

        register_engine(engine, replace=replace)
        self._undo.append(lambda: unregister_engine(engine.name))
        self.provides.append(f"engine {engine.name}")

    def add_hook(self, event: str, callback: Callable[[Any], None]) -> None:
        """Call ``callback(payload)`` on every ``event`` of :data:`foxnb.hooks.hooks`."""
        from foxnb.hooks import hooks

        self._undo.append(hooks.register(event, callback))
        self.provides.append(f"hook {event}")

    def add_config_section(self, name: str, model: type[Any]) -> None:
        """Accept a section ``name:`` in configuration files, validated by ``model`` (a
        pydantic model class; read it back with :func:`foxnb.configuration.section`)."""
        from foxnb import configuration

        if name in configuration.Settings._fields:
            raise ValueError(f"configuration section {name!r} would shadow a foxnb setting")
        with _lock:
            if name in _sections:
                raise ValueError(f"a configuration section {name!r} exists")
            _sections[name] = model
        self._undo.append(lambda: _forget(_sections, name))
        self.provides.append(f"config section {name}")

    def add_strategy(self, provider: StrategyProvider) -> None:
        """Add a strategy for ``foxnb.compare`` (:class:`StrategyProvider`)."""
        name = getattr(provider, "name", None)
        if not isinstance(name, str) or not callable(getattr(provider, "build", None)):
            raise ValueError(f"{provider!r} is not a strategy provider: it needs a name and "
                             "build(function, argtypes)")
        with _lock:
            if name in BUILTIN_STRATEGIES or name in _strategies:
                raise ValueError(f"a strategy called {name!r} exists")
            _strategies[name] = provider
        self._undo.append(lambda: _forget(_strategies, name))
        self.provides.append(f"strategy {name}")

    def _rollback(self) -> None:
        for undo in reversed(self._undo):
            try:
                undo()
            except Exception:  # best effort: the rest is still undone
                continue
        self._undo.clear()
        self.provides.clear()


def _forget(registry: dict[str, Any], name: str) -> None:
    with _lock:
        registry.pop(name, None)


class _EntryPoint(NamedTuple):
    """A ``foxnb.plugins`` entry point: its name, ``module:attr`` and distribution."""

    name: str
    value: str
    dist: str

    def load(self) -> Any:
        """Import the module and return the attribute (``importlib.metadata``'s rule)."""
        import importlib

        module, _, attrs = self.value.partition(":")
        target: Any = importlib.import_module(module.strip())
        for attr in filter(None, attrs.strip().split(".")):
            target = getattr(target, attr)
        return target


def _entry_points() -> list[_EntryPoint]:
    """The installed plugins. Listing them with ``importlib.metadata`` reads every
    distribution's metadata (tens of ms in a kernel's first cell), so the list is kept in
    the cache directory, keyed by the modification times of the ``sys.path`` directories:
    installing or removing a package changes its directory, and the list is read again.
    A directory that changed for another reason (the notebook's own, where every save
    writes) keeps the list valid if its distributions (``*.dist-info``, ``*.egg-info``,
    ``*.egg`` and their times) are the same."""
    stamp = _path_stamp()
    index = _index_path()
    if index is not None:
        cached = _read_index(index, stamp)
        if cached is not None:
            return cached
    from importlib.metadata import entry_points

    found = sorted({_EntryPoint(ep.name, ep.value, _distribution(ep))
                    for ep in entry_points(group=GROUP)})
    if index is not None:
        _write_index(index, stamp, found)
    return found


_DISTRIBUTIONS = (".dist-info", ".egg-info", ".egg")


def _distributions(entry: str) -> list[Any] | None:
    """The distributions ``importlib.metadata`` would find in one ``sys.path`` directory, with
    their modification times; None for what is not a readable directory (a zip file)."""
    import os

    try:
        with os.scandir(entry or ".") as it:
            return sorted([e.name, e.stat().st_mtime_ns] for e in it
                          if e.name.lower().endswith(_DISTRIBUTIONS))
    except OSError:
        return None


def _path_stamp() -> list[Any]:
    import os
    import sys

    stamp: list[Any] = [sys.version, GROUP]
    for entry in sys.path:
        try:
            stamp.append([entry, os.stat(entry or ".").st_mtime_ns])
        except OSError:
            stamp.append([entry, None])
    return stamp


def _index_path() -> Any:
    from foxnb import configuration

    if not configuration.settings().cache_enabled:
        return None
    from foxnb.cache import cache_dir

    return cache_dir() / "plugins-index.json"


def _read_index(path: Any, stamp: list[Any]) -> list[_EntryPoint] | None:
    import json

    try:
        data = json.loads(path.read_text())
        found = [_EntryPoint(str(n), str(v), str(d)) for n, v, d in data["plugins"]]
        old = data["stamp"]
        if old == stamp:
            return found
        if old[:2] != stamp[:2] or [e for e, _ in old[2:]] != [e for e, _ in stamp[2:]]:
            return None  # another Python or other sys.path entries
        listed = data["distributions"]
        for (entry, mtime), (_, was) in zip(stamp[2:], old[2:], strict=True):
            if mtime != was and (mtime is None or was is None or listed.get(entry) is None
                                 or _distributions(entry) != listed[entry]):
                return None
        # the same distributions: next time a stat suffices (their listing is unchanged)
        _write_index(path, stamp, found, listed)
        return found
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # missing, stale or damaged: list the plugins again


def _write_index(path: Any, stamp: list[Any], found: list[_EntryPoint],
                 listed: dict[str, Any] | None = None) -> None:
    import json

    from foxnb.cache.store import make_private_dirs, write_atomic

    try:
        make_private_dirs(path.parent)
        if listed is None:
            listed = {entry: _distributions(entry) for entry, _ in stamp[2:]}
        # not flushed to disk: a list lost in a crash is listed again
        write_atomic(path, json.dumps({"stamp": stamp, "plugins": found,
                                       "distributions": listed}).encode(), durable=False)
    except OSError:
        pass  # an unwritable cache only costs the listing next time


def _distribution(ep: Any) -> str:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return ""
    return f"{dist.metadata['Name']} {dist.version}"


def _warn(message: str) -> None:
    warnings.warn(message, FoxnbWarning, stacklevel=3)


def _load_one(ep: _EntryPoint, disabled: frozenset[str]) -> PluginInfo:
    origin = (ep.name, ep.value, ep.dist)
    if ep.name in disabled:
        return PluginInfo(*origin, "disabled", "in the plugins_disabled setting")
    try:
        target = ep.load()
    except Exception as exc:
        return PluginInfo(*origin, "failed", f"import failed: {type(exc).__name__}: {exc}")
    wants = getattr(target, "FOXNB_PLUGIN_API", None)
    if wants != PLUGIN_API:
        said = "declares no FOXNB_PLUGIN_API" if wants is None else f"needs plugin API {wants!r}"
        return PluginInfo(*origin, "incompatible", f"{said}; this foxnb provides {PLUGIN_API}")
    if not callable(target):
        return PluginInfo(*origin, "failed", f"{ep.value} is not callable")
    context = PluginContext(ep.name)
    _contexts.append(context)
    try:
        target(context)
    except Exception as exc:
        context._rollback()
        return PluginInfo(*origin, "failed", f"{type(exc).__name__}: {exc}")
    return PluginInfo(*origin, "loaded", "", tuple(context.provides))


def load_plugins() -> PluginList:
    """Load the installed plugins once (later calls return the same statuses).

    Never raises for a plugin: a failing or incompatible one is one FoxnbWarning.
    """
    from foxnb import configuration

    with _lock:
        if _loaded[0]:
            return PluginList(_infos)
        _loaded[0] = True
        current = configuration.settings()
        if current.disable_plugin_autoload:
            return PluginList(_infos)
        try:
            eps = _entry_points()
        except Exception as exc:  # a broken installation must not break foxnb
            _warn(f"foxnb could not list plugins: {type(exc).__name__}: {exc}")
            return PluginList(_infos)
        seen: set[str] = set()
        for ep in eps:
            if ep.name in seen:
                continue  # the same distribution found twice on sys.path
            seen.add(ep.name)
            _infos.append(_load_one(ep, frozenset(current.plugins_disabled)))
        loaded = PluginList(_infos)
    for info in loaded:
        if info.status in ("failed", "incompatible"):
            _warn(f"foxnb plugin {info.name!r} ({info.value}) {info.status}: {info.reason}; "
                  "foxnb works without it")
    configuration.recheck_sections()  # the files' sections, now that plugins are in
    return loaded


def loaded() -> bool:
    """Whether :func:`load_plugins` ran."""
    return _loaded[0]


def plugins() -> PluginList:
    """The installed plugins and their status (loads them on the first call).

    Examples
    --------
    >>> import foxnb
    >>> print(foxnb.plugins())  # doctest: +SKIP
    cython           loaded       foxnb-cython 0.1.0  [strategy cython]
    """
    return load_plugins()


def config_sections() -> dict[str, Any]:
    """Configuration sections plugins added: ``{name: pydantic model class}``."""
    with _lock:
        return dict(_sections)


def strategy_providers() -> dict[str, StrategyProvider]:
    """Strategies plugins added (loads the plugins first): ``{name: provider}``."""
    load_plugins()
    with _lock:
        return dict(_strategies)


def strategy_provider(name: str) -> StrategyProvider | None:
    """The plugin strategy called ``name``, or None."""
    return strategy_providers().get(name)


def specialising(provider: StrategyProvider, function: PluginFunction) -> Callable[..., Any]:
    """A callable that builds ``provider``'s version of ``function`` for the numba types of
    the arguments of each new signature it is called with (as ``foxnb.compare`` needs)."""
    built: dict[tuple[Any, ...], Callable[..., Any]] = {}

    def call(*args: Any) -> Any:
        import numba

        argtypes = tuple(numba.typeof(a) for a in args)
        fn = built.get(argtypes)
        if fn is None:
            fn = built[argtypes] = provider.build(function, argtypes)
        return fn(*args)

    call.__name__ = f"{function.name}[{provider.name}]"
    return call


def _reset_for_tests() -> None:
    """Forget loaded plugins and remove what they registered (tests only)."""
    with _lock:
        for context in _contexts:
            context._rollback()
        _contexts.clear()
        _infos.clear()
        _sections.clear()
        _strategies.clear()
        _loaded[0] = False
