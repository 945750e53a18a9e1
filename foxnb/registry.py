"""The registry of fox functions of one namespace: keys, dependents, rebuilds.

A function's key digests its source, its options, the environment stamp and, for every
global it reads, a fingerprint of the value the namespace holds now — for a fox function
that is the callee's own key, so a change anywhere below a function changes its key. A
function whose key changed gets a new compiled object; the others keep theirs, with every
specialisation already compiled.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from foxnb.cache.keys import digest, environment_stamp, fingerprint_global
from foxnb.engines.base import BuildSpec, JitOptions, get_engine
from foxnb.ir import FunctionDef
from foxnb.orchestrator.context import current_correlation_id

__all__ = ["Record", "Registry", "registry_for"]

_MISSING = object()
_SLOT = "__foxnb_registry__"


@dataclass
class Record:
    """One fox function: how it was defined and what is bound now."""

    name: str
    function: FunctionDef
    options: JitOptions
    engine: str
    obj: Any = None
    key: str = ""
    uncacheable: str = ""
    seen: dict[str, Any] = field(default_factory=dict)
    builds: int = 0
    correlation_id: str | None = None
    redefined: bool = False
    globals: dict[str, Any] = field(default_factory=dict)  # what the compiler resolves


@dataclass(frozen=True)
class Change:
    """What a sync did to one function, for verbose output and tests."""

    name: str
    action: str  # "new", "rebuilt", "unchanged"
    because: tuple[str, ...] = ()


class Registry:
    """Fox functions of one namespace (one per IPython shell or script namespace)."""

    def __init__(self) -> None:
        self.records: dict[str, Record] = {}
        self._lock = threading.RLock()

    def define(self, functions: Sequence[FunctionDef], options: JitOptions,
               ns: dict[str, Any], *, engine: str = "jit") -> list[Change]:
        """Register (or redefine) ``functions`` and bring every record up to date."""
        with self._lock:
            forced: set[str] = set()
            for fn in functions:
                old = self.records.get(fn.name)
                if (old is not None and old.function.source == fn.source
                        and old.options == options and old.engine == engine
                        and not options.force):
                    old.function = fn  # same text, maybe a new cell file name
                    ns[fn.name] = old.obj
                    continue
                self.records[fn.name] = Record(fn.name, fn, options, engine,
                                               correlation_id=current_correlation_id(),
                                               redefined=old is not None)
                if options.force:
                    forced.add(fn.name)
            return self._sync(ns, forced)

    def refresh(self, ns: dict[str, Any]) -> list[Change]:
        """Rebuild functions whose callees or globals changed since they were built.

        Cheap when nothing changed: identity checks only (run after every cell).
        """
        with self._lock:
            if not self.records or not self._stale(ns):
                return []
            return self._sync(ns, set())

    # -- internals --------------------------------------------------------------------------
    def _stale(self, ns: dict[str, Any]) -> bool:
        for rec in self.records.values():
            if ns.get(rec.name, _MISSING) is not rec.obj:
                return True
            for name, value in rec.seen.items():
                if ns.get(name, _MISSING) is not value:
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

    def _keys(self, ns: dict[str, Any]) -> dict[str, tuple[str, str, list[str]]]:
        """Per record: (key, why it cannot be cached on disk or "", fox callees).

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
            for g in rec.function.globals_read:
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
        out: dict[str, tuple[str, str, list[str]]] = {}
        for component in _components(callees):
            members = sorted(component)
            parts = [stamp]
            why = ""
            for m in members:
                rec = self.records[m]
                parts += [m, rec.engine, rec.function.source, rec.options.key_part(), *leaves[m]]
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
                out[m] = (digest(key, m), why, callees[m])
        return out

    def _sync(self, ns: dict[str, Any], forced: set[str]) -> list[Change]:
        self._detach_rebound(ns)
        keys = self._keys(ns)
        stale_names = {r.name for r in self.records.values()
                       if r.obj is None or r.key != keys[r.name][0] or r.name in forced
                       or self._array_replaced(r, ns)}
        # A rebuilt callee is a new object: every caller must be rebuilt to call it.
        grew = True
        while grew:
            callers = {n for n in self.records if n not in stale_names
                       and any(c in stale_names for c in keys[n][2])}
            stale_names |= callers
            grew = bool(callers)
        stale = [r for r in self.records.values() if r.name in stale_names]
        changes: list[Change] = []
        for rec in self.records.values():
            if rec in stale:
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
            key, uncacheable, _ = keys[rec.name]
            gdict = {"__builtins__": builtins, "__name__": ns.get("__name__", "__main__")}
            self._fill_globals(rec, gdict, ns)  # default arguments are evaluated on build
            specs[rec.name] = BuildSpec(rec.function, gdict, rec.options, key, uncacheable)
        for rec in stale:
            spec = specs[rec.name]
            rec.obj = get_engine(rec.engine).build(spec)
            rec.key, rec.uncacheable, rec.globals = spec.key, spec.uncacheable, spec.globals
            rec.builds += 1
            ns[rec.name] = rec.obj
        # Again, now that every rebuilt callee is bound: callers must see the new objects
        # (numba reads these globals when it compiles, on first call).
        for rec in stale:
            self._fill_globals(rec, specs[rec.name].globals, ns)
            specs[rec.name].arrays[:] = self._arrays(rec.name, keys)
        for rec in self.records.values():
            # Absent names count too: defining one later (even shadowing a builtin) is a change.
            rec.seen = {g: ns.get(g, _MISSING) for g in rec.function.globals_read
                        if g != rec.name}
            ns[rec.name] = rec.obj
        return changes

    @staticmethod
    def _array_replaced(rec: Record, ns: dict[str, Any]) -> bool:
        # An array global rebound to another array: the compiled code froze the old one,
        # even when the new one has the contents the key was made from.
        return any(_is_array(v) and ns.get(g, _MISSING) is not v
                   for g, v in rec.globals.items() if g != rec.name)

    def _arrays(self, name: str, keys: dict[str, tuple[str, str, list[str]]]
                ) -> list[tuple[dict[str, Any], str]]:
        # numba freezes global arrays when it compiles (on first call), not when the key is
        # made: their contents are fingerprinted again then (see FoxCache).
        out: list[tuple[dict[str, Any], str]] = []
        seen: set[str] = set()
        todo = [name]
        while todo:
            m = todo.pop()
            if m in seen or m not in self.records:
                continue
            seen.add(m)
            gdict = self.records[m].globals
            out += [(gdict, g) for g, v in gdict.items() if _is_array(v)]
            todo += keys[m][2] if m in keys else []
        return out

    def _fill_globals(self, rec: Record, gdict: dict[str, Any],
                      ns: dict[str, Any]) -> None:
        for g in rec.function.globals_read:
            if g == rec.name:
                continue
            value = ns.get(g, _MISSING)
            if value is not _MISSING:
                gdict[g] = value


def _is_array(value: Any) -> bool:
    return type(value).__name__ == "ndarray" and type(value).__module__ == "numpy"


def _components(graph: dict[str, list[str]]) -> list[set[str]]:
    """Strongly connected components of ``graph``, each after every component it reaches."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm; call graphs of a notebook are small
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component: set[str] = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            out.append(component)

    for v in graph:
        if v not in index:
            visit(v)
    return out


def registry_for(ns: dict[str, Any]) -> Registry:
    """Return the registry that lives in namespace ``ns`` (created on first use).

    Keeping it in the namespace means ``%reset`` forgets fox functions with everything else.
    """
    reg = ns.get(_SLOT)
    if not isinstance(reg, Registry):
        reg = Registry()
        ns[_SLOT] = reg
    return reg
