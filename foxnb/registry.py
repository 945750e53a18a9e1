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

from foxnb.cache.keys import digest, environment_stamp, fingerprint_value
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
        """Per record: (key, why it cannot be cached on disk or "", fox callees)."""
        memo: dict[str, tuple[str, str, list[str]]] = {}
        stamp = repr(environment_stamp())

        def key_of(name: str, stack: frozenset[str]) -> tuple[str, str, list[str]]:
            if name in memo:
                return memo[name]
            rec = self.records[name]
            if name in stack:  # mutual recursion: the source stands for the cycle
                return f"cycle:{rec.function.source_hash}", "", []
            parts = [rec.engine, rec.function.source, rec.options.key_part(), stamp]
            uncacheable = ""
            callees: list[str] = []
            for g in rec.function.globals_read:
                if g == name:
                    parts.append(f"{g}=self")
                    continue
                value = ns.get(g, _MISSING)
                target = self._target(g, value)
                if target is not None:
                    k, why, _ = key_of(target, stack | {name})
                    parts.append(f"{g}=fox:{k}")
                    uncacheable = uncacheable or (why and f"{target}: {why}")
                    callees.append(target)
                elif value is _MISSING:
                    parts.append(f"{g}=builtin" if hasattr(builtins, g) else f"{g}=missing")
                else:
                    fp = fingerprint_value(value)
                    if fp is None:
                        uncacheable = uncacheable or (
                            f"global {g!r} ({type(value).__name__}) has no stable fingerprint")
                        fp = f"id:{id(value)}"
                    parts.append(f"{g}={fp}")
            memo[name] = (digest(*parts), uncacheable, callees)
            return memo[name]

        for name in self.records:
            key_of(name, frozenset())
        return memo

    def _sync(self, ns: dict[str, Any], forced: set[str]) -> list[Change]:
        self._detach_rebound(ns)
        keys = self._keys(ns)
        stale = [r for r in self.records.values()
                 if r.obj is None or r.key != keys[r.name][0] or r.name in forced]
        changes: list[Change] = []
        stale_names = {r.name for r in stale}
        for rec in self.records.values():
            if rec in stale:
                if rec.obj is None:
                    changes.append(Change(rec.name, "redefined" if rec.redefined else "new"))
                else:
                    because = tuple(c for c in keys[rec.name][2] if c in stale_names)
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
            rec.key, rec.uncacheable = spec.key, spec.uncacheable
            rec.builds += 1
            ns[rec.name] = rec.obj
        # Again, now that every rebuilt callee is bound: callers must see the new objects
        # (numba reads these globals when it compiles, on first call).
        for rec in stale:
            self._fill_globals(rec, specs[rec.name].globals, ns)
        for rec in self.records.values():
            # Absent names count too: defining one later (even shadowing a builtin) is a change.
            rec.seen = {g: ns.get(g, _MISSING) for g in rec.function.globals_read
                        if g != rec.name}
            ns[rec.name] = rec.obj
        return changes

    def _fill_globals(self, rec: Record, gdict: dict[str, Any],
                      ns: dict[str, Any]) -> None:
        for g in rec.function.globals_read:
            if g == rec.name:
                continue
            value = ns.get(g, _MISSING)
            if value is not _MISSING:
                gdict[g] = value


def registry_for(ns: dict[str, Any]) -> Registry:
    """Return the registry that lives in namespace ``ns`` (created on first use).

    Keeping it in the namespace means ``%reset`` forgets fox functions with everything else.
    """
    reg = ns.get(_SLOT)
    if not isinstance(reg, Registry):
        reg = Registry()
        ns[_SLOT] = reg
    return reg
