"""The registry of fox functions of one namespace: keys, dependents, rebuilds.

A function's key digests its source, its options, the environment stamp, its default values
and, for every global it reads, a fingerprint of the value the namespace holds now — for a
fox function that is the callee's own key, so a change anywhere below a function changes its
key. A function whose key changed gets a new compiled object; the others keep theirs, with
every specialisation already compiled.

numba reads global values when it compiles (on first call), not when a function is defined:
the cache entry key adds a fingerprint of what the compiler reads *then* (``observed``).
"""

import builtins
import contextlib
import logging
import threading
import time
import types
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from foxnb import early
from foxnb._graph import components as _components
from foxnb.cache.keys import digest, environment_stamp, fingerprint_global, fingerprint_value
from foxnb.engines.base import (
    BuildGroup,
    BuildResult,
    BuildSpec,
    EngineContext,
    current_store,
    flush_engines,
    get_engine,
    make_options,
    option_names,
)
from foxnb.errors import FoxnbError, FoxnbWarning
from foxnb.ir import FunctionDef
from foxnb.orchestrator.context import current_correlation_id

__all__ = ["Record", "Registry", "registry_for"]

_MISSING = object()
_log = logging.getLogger("foxnb.registry")
_WARNED: set[tuple[str | None, str]] = set()
_SLOT = "__foxnb_registry__"


class Record:
    """One fox function: how it was defined and what is bound now (mutable: the registry
    updates it on every sync; :meth:`copy` is the snapshot a failed cell restores)."""

    __slots__ = ("builds", "callees", "correlation_id", "defaults", "engine", "function",
                 "globals", "group", "key", "kwdefaults", "name", "obj", "options", "previous",
                 "redefined", "seen", "seen_attrs", "uncacheable")

    def __init__(self, name: str, function: FunctionDef, options: Any, engine: str, *,
                 correlation_id: str | None = None, redefined: bool = False,
                 defaults: tuple[Any, ...] | None = None,
                 kwdefaults: dict[str, Any] | None = None, previous: Any = None,
                 group: str = "") -> None:
        self.name = name
        self.function = function
        self.options = options  # the engine's options type
        self.engine = engine
        self.obj: Any = None
        self.key = ""
        self.uncacheable = ""
        self.seen: dict[str, Any] = {}
        self.builds = 0
        self.correlation_id = correlation_id
        self.redefined = redefined
        self.globals: dict[str, Any] = {}  # what the compiler resolves
        self.defaults = defaults  # evaluated once, when the def ran
        self.kwdefaults = kwdefaults
        # (global, attribute path) -> the object the chain resolved to when last synced
        self.seen_attrs: dict[tuple[str, str], Any] = {}
        self.callees: list[str] = []
        self.previous = previous  # what was bound before a redefinition (rebuilt in place)
        self.group = group  # functions built together (one AOT library); "" = on its own

    def copy(self) -> "Record":
        """A shallow copy (the registry replaces these containers, it never mutates them)."""
        twin = Record.__new__(Record)
        for slot in Record.__slots__:
            setattr(twin, slot, getattr(self, slot))
        return twin

    def __repr__(self) -> str:
        return f"Record({self.name!r}, engine={self.engine!r}, key={self.key[:12]!r})"


class Change(NamedTuple):
    """What a sync did to one function, for verbose output and tests."""

    name: str
    action: str  # "new", "rebuilt", "unchanged"
    because: tuple[str, ...] = ()


class Registry:
    """Fox functions of one namespace (one per IPython shell or script namespace)."""

    def __init__(self) -> None:
        self.records: dict[str, Record] = {}
        self.reports: list[Any] = []  # what engines reported about builds (e.g. AOT libraries)
        self._lock = threading.RLock()
        self._groups = 0

    def define(self, functions: Sequence[FunctionDef], options: Any,
               ns: dict[str, Any], *, engine: str = "jit") -> list[Change]:
        """Register (or redefine) ``functions`` and bring every record up to date.

        Default values are evaluated now, in ``ns``, as Python does when a ``def`` runs. If
        anything fails (a ``NameError`` in a default, a build error), the registry and the
        namespace are left as they were.
        """
        # Evaluated before anything changes: an error here leaves everything untouched.
        defaults = {fn.name: _evaluate_defaults(fn, ns) for fn in functions}
        together = get_engine(engine).capabilities.builds_cells
        with self._lock, self._transaction(ns, [fn.name for fn in functions]):
            self._groups += 1
            group = f"cell{self._groups}" if together else ""
            forced: set[str] = set()
            for fn in functions:
                old = self.records.get(fn.name)
                values = defaults[fn.name]
                if (old is not None and old.function.source == fn.source
                        and old.options == options and old.engine == engine
                        and _same_defaults((old.defaults, old.kwdefaults), values)
                        and not together and not options.force):
                    old.function = fn  # same text, maybe a new cell file name
                    ns[fn.name] = old.obj
                    continue
                self.records[fn.name] = Record(fn.name, fn, options, engine,
                                               correlation_id=current_correlation_id(),
                                               redefined=old is not None,
                                               defaults=values[0], kwdefaults=values[1],
                                               previous=old.obj if old is not None else None,
                                               group=group)
                if options.force:
                    forced.add(fn.name)
            return self._sync(ns, forced)

    def refresh(self, ns: dict[str, Any]) -> list[Change]:
        """Rebuild functions whose callees or globals changed since they were built.

        Cheap when nothing changed: identity checks only (run after every cell and before
        each statement of a fox cell), module attribute chains (``mod.K``) included.
        """
        with self._lock:
            if not self.records:
                return []
            flush_engines()  # deferred work of the calls the last statement made
            if not self._stale(ns):
                return []
            with self._transaction(ns, []):
                return self._sync(ns, set())

    # -- internals --------------------------------------------------------------------------
    @contextlib.contextmanager
    def _transaction(self, ns: dict[str, Any], names: Sequence[str]) -> Iterator[None]:
        """Restore records and their bindings in ``ns`` if the block raises."""
        saved = {n: r.copy() for n, r in self.records.items()}
        reports = len(self.reports)
        touched = set(saved) | set(names)
        bound = {n: ns.get(n, _MISSING) for n in touched}
        try:
            yield
        except BaseException:
            self.records = saved
            del self.reports[reports:]
            for n in touched | set(self.records):
                value = bound.get(n, _MISSING)
                if value is _MISSING:
                    ns.pop(n, None)
                else:
                    ns[n] = value
            raise

    def _stale(self, ns: dict[str, Any]) -> bool:
        for rec in self.records.values():
            if ns.get(rec.name, _MISSING) is not rec.obj:
                return True
            for name, value in rec.seen.items():
                if ns.get(name, _MISSING) is not value:
                    return True
            for (name, path), value in rec.seen_attrs.items():
                if _resolve(ns.get(name, _MISSING), path) is not value:
                    return True
        return False

    def _detach_rebound(self, ns: dict[str, Any]) -> None:
        # A name the user rebound to something else (or deleted) is no fox function anymore.
        for name in [n for n, r in self.records.items()
                     if r.obj is not None and ns.get(n, _MISSING) is not r.obj]:
            del self.records[name]

    def _target(self, name: str, value: Any) -> str | None:
        rec = self.records.get(name)
        if rec is not None and (rec.obj is None or value is rec.obj):
            return name
        for other in self.records.values():
            if other.obj is not None and value is other.obj:
                return other.name
        return None

    def _keys(self, ns: dict[str, Any]) -> dict[str, tuple[str, str, list[str], int]]:
        """Per record: (key, why it cannot be cached on disk or "", fox callees, position of
        its component, callees first).

        Keys are computed per strongly connected component of the call graph, callees
        first: mutually recursive functions share one component key, so a change in any
        of them (or below) changes all of them.
        """
        stamp = repr(environment_stamp())
        callees: dict[str, list[str]] = {}
        leaves: dict[str, list[str]] = {}
        leaf_why: dict[str, str] = {}
        for name, rec in self.records.items():
            callees[name], leaves[name], leaf_why[name] = [], [], ""
            fp_defaults = _defaults_fingerprint(rec.defaults, rec.kwdefaults)
            if fp_defaults is None:
                leaf_why[name] = "a default value has no stable fingerprint"
                fp_defaults = f"id:{id(rec.defaults)}:{id(rec.kwdefaults)}"
            leaves[name].append(f"defaults={fp_defaults}")
            for g in rec.function.body_globals:
                value = ns.get(g, _MISSING)
                target = name if g == name else self._target(g, value)
                if target is not None:
                    callees[name].append(target)
                    leaves[name].append(f"{g}->{target}")
                elif value is _MISSING:
                    leaves[name].append(f"{g}=builtin" if hasattr(builtins, g) else f"{g}=missing")
                else:
                    fp = fingerprint_global(
                        value, [a for n, a in rec.function.global_attrs if n == g])
                    if fp is None:
                        leaf_why[name] = leaf_why[name] or (
                            f"global {g!r} ({type(value).__name__}) has no stable fingerprint")
                        fp = f"id:{id(value)}"
                    leaves[name].append(f"{g}={fp}")
        out: dict[str, tuple[str, str, list[str], int]] = {}
        engine_parts: dict[tuple[str, int], str] = {}  # one toolchain look-up per engine
        for position, component in enumerate(_components(callees)):
            members = sorted(component)
            parts = [stamp]
            why = ""
            for m in members:
                rec = self.records[m]
                which = (rec.engine, id(rec.options))
                if which not in engine_parts:
                    engine_parts[which] = get_engine(rec.engine).key_part(rec.options)
                parts += [m, rec.engine, rec.function.source, rec.options.key_part(),
                          engine_parts[which], *leaves[m]]
                why = why or leaf_why[m]
                for c in callees[m]:
                    if c not in component:
                        parts.append(f"{c}=fox:{out[c][0]}")
                        why = why or (out[c][1] and f"{c}: {out[c][1]}")
            if len(members) > 1 or members[0] in callees[members[0]]:
                # numba cannot reload cached recursive code safely (numba #6061: segfaults)
                why = why or "recursive functions are not cached (numba #6061)"
            key = digest(*parts)
            for m in members:
                out[m] = (digest(key, m), why, callees[m], position)
        return out

    def _sync(self, ns: dict[str, Any], forced: set[str]) -> list[Change]:
        self._detach_rebound(ns)
        keys = self._keys(ns)
        stale_names = {r.name for r in self.records.values()
                       if r.obj is None or r.key != keys[r.name][0] or r.name in forced
                       or _frozen_rebound(r, ns)}
        # A rebuilt callee is new code: every caller must be rebuilt to call it, and a
        # function built with others (one library) is rebuilt with all of them.
        grew = True
        while grew:
            groups = {self.records[n].group for n in stale_names} - {""}
            callers = {n for n, r in self.records.items() if n not in stale_names
                       and (r.group in groups or any(c in stale_names for c in keys[n][2]))}
            stale_names |= callers
            grew = bool(callers)
        stale = [r for r in self.records.values() if r.name in stale_names]
        changes: list[Change] = []
        for rec in self.records.values():
            if rec.name in stale_names:
                if rec.obj is None:
                    changes.append(Change(rec.name, "redefined" if rec.redefined else "new"))
                else:
                    because = tuple(dict.fromkeys(
                        c for c in keys[rec.name][2] if c in stale_names and c != rec.name))
                    changes.append(Change(rec.name, "rebuilt", because or ("its globals",)))
            else:
                changes.append(Change(rec.name, "unchanged"))
        specs: dict[str, BuildSpec] = {}
        for rec in stale:
            key, uncacheable = keys[rec.name][:2]
            # filled just before its group is built (below), when its callees are
            gdict = {"__builtins__": builtins, "__name__": ns.get("__name__", "__main__")}
            specs[rec.name] = BuildSpec(
                rec.function, gdict, rec.options, key, uncacheable, defaults=rec.defaults,
                kwdefaults=rec.kwdefaults, namespace=ns,
                observed=self._observer(rec.name))
        built: dict[str, Any] = {}
        context: EngineContext | None = None  # made on first need: a cache hit needs none
        # Callees first, and each group's globals see the callees just built: an engine that
        # compiles now (AOT) must compile the new code, not what the namespace still holds.
        for members in sorted(_groups(stale).values(),
                              key=lambda ms: max(keys[m.name][3] for m in ms)):
            for m in members:
                self._fill_globals(m, specs[m.name].globals, ns, built)
            engine = get_engine(members[0].engine)
            group = BuildGroup(tuple(specs[m.name] for m in members),
                               key=digest(*sorted(keys[m.name][0] for m in members)),
                               cell_functions={m.name: m.function for m in members})
            result = _cached(engine, group)
            if result is None:
                context = context or EngineContext.current()
                result = _build(engine, group, context)
            built.update(result.objects)
            if result.report is not None:
                self.reports.append(result.report)
        # Nothing is changed before every build succeeded (a failed build leaves all as it was).
        # Then a rebuilt function takes the place of the object already bound, where its
        # engine can do that: references the user holds see the rebuild.
        for rec in stale:
            old = rec.obj if rec.obj is not None else rec.previous
            if old is not None and old is ns.get(rec.name):
                built[rec.name] = _adopt(get_engine(rec.engine), old, built[rec.name])
        for rec in stale:
            spec = specs[rec.name]
            rec.obj, rec.previous = built[rec.name], None
            spec.globals[rec.name] = rec.obj
            rec.key, rec.uncacheable, rec.globals = spec.key, spec.uncacheable, spec.globals
            rec.builds += 1
            ns[rec.name] = rec.obj
        # Again, now that every rebuilt callee is bound: callers must see the new objects
        # (numba reads these globals when it compiles, on first call).
        for rec in stale:
            self._fill_globals(rec, specs[rec.name].globals, ns)
        for rec in self.records.values():
            rec.callees = keys[rec.name][2]
            if getattr(rec.obj, "__foxnb_plain__", False):
                # Plain Python reads the namespace when it runs: nothing to rebuild for.
                rec.seen, rec.seen_attrs = {}, {}
                ns[rec.name] = rec.obj
                continue
            # Absent names count too: defining one later (even shadowing a builtin) is a change.
            rec.seen = {g: ns.get(g, _MISSING) for g in rec.function.body_globals
                        if g != rec.name}
            rec.seen_attrs = {(g, path): _resolve(ns.get(g, _MISSING), path)
                              for g, path in rec.function.global_attrs
                              if g in rec.function.body_globals
                              and isinstance(ns.get(g), types.ModuleType)}
            ns[rec.name] = rec.obj
        return changes

    def _observer(self, name: str) -> Any:
        def observed() -> str | None:
            return self._observed(name)
        return observed

    def _observed(self, name: str) -> str | None:
        """Fingerprint of every global value the compiler reads for ``name`` and its fox
        callees, read now from the globals it compiles against; None if one has none."""
        parts: list[str] = []
        done: set[str] = set()
        todo = [name]
        while todo:
            m = todo.pop()
            rec = self.records.get(m)
            if m in done or rec is None:
                continue
            done.add(m)
            for g in rec.function.body_globals:
                if g == m:
                    continue
                value = rec.globals.get(g, _MISSING)
                if value is _MISSING:
                    parts.append(f"{m}.{g}=absent")
                    continue
                fp = fingerprint_global(value, [a for n, a in rec.function.global_attrs
                                                if n == g])
                if fp is None:
                    return None
                parts.append(f"{m}.{g}={fp}")
            todo += rec.callees
        return digest(*sorted(parts))

    def _fill_globals(self, rec: Record, gdict: dict[str, Any], ns: dict[str, Any],
                      built: dict[str, Any] | None = None) -> None:
        for g in rec.function.body_globals:
            if g == rec.name:
                continue
            value = built[g] if built and g in built else ns.get(g, _MISSING)
            if value is not _MISSING:
                gdict[g] = value
        prepare = getattr(get_engine(rec.engine), "prepare_globals", None)
        if prepare is not None:
            prepare(gdict)  # e.g. callees of another engine as handles this one can call


def _cached(engine: Any, group: BuildGroup) -> BuildResult | None:
    """What ``engine`` loads for ``group`` from the cache (``Engine.cached``), recorded as a
    finished compile task; None when it has no such step or the cache does not hold the
    build. A load that fails is left to :func:`_build`, which reports it as a build would."""
    cached = getattr(engine, "cached", None)
    if cached is None:
        return None
    started = time.monotonic()
    try:
        result: BuildResult | None = cached(group, current_store())
    except Exception:
        _log.debug("the %s engine could not load %s from the cache; building it",
                   engine.name, _names(group), exc_info=True)
        return None
    if result is not None:
        early.finished_task("compile", _names(group), engine.name, started,
                            detail=result.detail, correlation_id=current_correlation_id())
    return result


def _names(group: BuildGroup) -> str:
    return ", ".join(s.function.name for s in group.specs)


def _build(engine: Any, group: BuildGroup, context: EngineContext) -> BuildResult:
    """Build ``group`` with ``engine``; an eager engine that declares a ``fallback`` (AOT →
    JIT) runs as the orchestrator's chain: an engine that cannot build (its toolchain
    failed, its breaker is open) hands the functions to the next, with one warning per cell.
    An error about the user's code ends the chain: every engine would fail the same way."""
    fallback_name = getattr(engine, "fallback", "")
    if not (engine.capabilities.builds_cells and fallback_name):
        return engine.build(group, context)  # type: ignore[no-any-return]
    failure: list[BaseException] = []

    def first() -> BuildResult:
        try:
            return engine.build(group, context)  # type: ignore[no-any-return]
        except Exception as exc:
            if isinstance(exc, FoxnbError):  # about the cell: not the engine's failure
                with contextlib.suppress(Exception):
                    setattr(exc, "foxnb_final", True)  # noqa: B010
                    setattr(exc, "foxnb_breaker", False)  # noqa: B010
            failure.append(exc)
            raise

    names = _names(group)

    def second() -> BuildResult:
        from foxnb.orchestrator.records import describe_error

        fallback = get_engine(fallback_name)  # imported only when needed (numba, for jit)
        why = (describe_error(failure[-1]) if failure else
               f"the {engine.name} engine's circuit breaker is open after repeated failures "
               f"(foxnb.get_orchestrator().breaker({engine.name!r}).reset() retries now)")
        _warn_once(f"fox{engine.name}: could not build {names} ({why}) — running "
                   f"{'it' if len(group.specs) == 1 else 'them'} with the {fallback.name} "
                   "engine instead")
        options = make_options(fallback, **_shared_options(group.options, fallback))
        specs = tuple(s._replace(options=options) for s in group.specs)
        return fallback.build(group._replace(specs=specs), context)

    result: BuildResult = context.orchestrator.fallback(
        [(engine.name, first), (fallback_name, second)], kind="compile", name=names)
    return result


def _shared_options(options: Any, engine: Any) -> dict[str, Any]:
    """The options ``engine`` has too (error model, fastmath, parallel...), by name."""
    wanted = set(option_names(engine.options_type))
    return {n: getattr(options, n) for n in option_names(type(options)) if n in wanted}


def _warn_once(message: str) -> None:
    """One warning per cell (correlation id) and message."""
    seen = (current_correlation_id(), message)
    if seen not in _WARNED:
        _WARNED.add(seen)
        warnings.warn(message, FoxnbWarning, stacklevel=6)


def _frozen_rebound(rec: Record, ns: dict[str, Any]) -> bool:
    """Whether the engine froze a global the namespace has since rebound to another object
    with the same contents (numba freezes arrays: the key alone cannot tell)."""
    check = getattr(get_engine(rec.engine), "frozen_rebound", None)
    return bool(check is not None and check(rec.globals, ns))


def _groups(records: Sequence[Record]) -> dict[tuple[str, str], list[Record]]:
    """Records built together: a cell's functions for cell-building engines, else one each."""
    out: dict[tuple[str, str], list[Record]] = {}
    for rec in records:
        out.setdefault((rec.engine, rec.group or f"fn:{rec.name}"), []).append(rec)
    return out


def _adopt(engine: Any, old: Any, new: Any) -> Any:
    return engine.adopt(old, new) if engine.capabilities.rebuilds_in_place else new


def _resolve(value: Any, path: str) -> Any:
    """``value.a.b`` for ``path`` "a.b", or a marker when an attribute is missing."""
    for part in path.split("."):
        value = getattr(value, part, _MISSING)
        if value is _MISSING:
            break
    return value


def _evaluate_defaults(fn: FunctionDef, ns: dict[str, Any]
                       ) -> tuple[tuple[Any, ...] | None, dict[str, Any] | None]:
    """Default values of ``fn``, evaluated in ``ns`` as the ``def`` statement would."""
    if not fn.has_defaults:
        return None, None
    # Only the names the defaults read; the def binds its name here, not in ``ns``.
    scope = {"__builtins__": ns.get("__builtins__", builtins)}
    scope.update({n: ns[n] for n in fn.default_names if n in ns})
    exec(fn.code, scope)
    func = scope[fn.name]
    return func.__defaults__, func.__kwdefaults__


def _defaults_fingerprint(defaults: tuple[Any, ...] | None,
                          kwdefaults: dict[str, Any] | None) -> str | None:
    if defaults is None and not kwdefaults:
        return "none"
    return fingerprint_value((defaults or (), tuple(sorted((kwdefaults or {}).items()))))


def _same_defaults(old: tuple[tuple[Any, ...] | None, dict[str, Any] | None],
                   new: tuple[tuple[Any, ...] | None, dict[str, Any] | None]) -> bool:
    fp = _defaults_fingerprint(*old)
    return fp is not None and fp == _defaults_fingerprint(*new)


def registry_for(ns: dict[str, Any]) -> Registry:
    """Return the registry that lives in namespace ``ns`` (created on first use).

    Keeping it in the namespace means ``%reset`` forgets fox functions with everything else.
    """
    reg = ns.get(_SLOT)
    if not isinstance(reg, Registry):
        reg = Registry()
        ns[_SLOT] = reg
    return reg
