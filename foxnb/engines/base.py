"""The Engine protocol, engine options, and the one engine registry (plugins use it too).

An engine turns the fox functions of one cell into callables. foxnb ships three —
``python`` (plain functions), ``jit`` (WaterFox, numba) and ``aot`` (ThunderFox, a shared
library) — and :func:`register_engine` adds more::

    from foxnb.engines.base import register_engine
    register_engine(MyEngine())          # then compile_cell(cell, ns, engine="mine")

Every engine gets what it needs passed in (:class:`EngineContext`: the cache store, the
orchestrator, the settings) and declares what it can do (:class:`Capabilities`).
"""

import importlib
import threading
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, Protocol

from foxnb.ir import FunctionDef

__all__ = [
    "BuildGroup",
    "BuildResult",
    "BuildSpec",
    "Capabilities",
    "Engine",
    "EngineContext",
    "JitOptions",
    "current_store",
    "engine_names",
    "fastmath_flags",
    "fastmath_text",
    "flush_engines",
    "get_engine",
    "make_options",
    "numba_converters",
    "option_names",
    "register_engine",
    "unregister_engine",
]

ErrorModel = Literal["python", "numpy"]

#: LLVM fast-math flags numba takes (``fast`` is all of them).
FASTMATH_FLAGS = ("fast", "nnan", "ninf", "nsz", "arcp", "contract", "afn", "reassoc")
#: What ``--fastmath [FLAGS]`` means, for both magics' help.
FASTMATH_HELP = (
    "LLVM fast-math: alone, every flag (reassociation, no NaN/inf checks); or comma-separated "
    "flags from " + ", ".join(FASTMATH_FLAGS) + ". '--fastmath contract' only fuses a*b+c "
    "into one FMA instruction (as gcc and Cython do by default): faster, and each fused "
    "operation rounds once instead of twice, so results differ from plain Python by about 1 "
    "ulp per contracted operation (relative ~1e-16 each; sums of many grow accordingly).")


def fastmath_flags(value: bool | str | frozenset[str] | set[str] | tuple[str, ...]
                   ) -> bool | frozenset[str]:
    """``--fastmath`` as numba takes it: True (all flags), False, or a set of flag names.

    ``value`` is a bool, flag names separated by commas (``"nnan,contract"``) or a collection
    of names. An empty set is False, ``{"fast"}`` is True.

    Raises
    ------
    FoxnbUsageError
        A name is not one of :data:`FASTMATH_FLAGS`.
    """
    if isinstance(value, bool):
        return value
    names = value.split(",") if isinstance(value, str) else list(value)
    flags = frozenset(str(n).strip() for n in names if str(n).strip())
    unknown = sorted(flags - set(FASTMATH_FLAGS))
    if unknown:
        from foxnb.errors import FoxnbUsageError

        raise FoxnbUsageError(f"unknown fastmath flag {', '.join(map(repr, unknown))}; the flags "
                              f"are {', '.join(FASTMATH_FLAGS)} (e.g. --fastmath nnan,contract)")
    return True if flags == {"fast"} else flags or False


def fastmath_text(value: bool | frozenset[str]) -> str:
    """The key text of normalised fastmath flags (a bool keeps its old text)."""
    return repr(value) if isinstance(value, bool) else ",".join(sorted(value))


class JitOptions(NamedTuple):
    """Options of ``%%foxjit``; the first four and ``opt_level`` change generated code and
    enter the cache key.

    ``fastmath`` is a bool or a set of LLVM fast-math flags (``frozenset({"contract"})``,
    or the text ``"nnan,contract"``). ``opt_level`` 0-3 optimises with ThunderFox's pipeline
    at that level (as ``%%foxaot -O``: from 2 the loop and SLP vectorisers, run twice), and
    float divisions by a divisor that provably cannot be zero lose their zero check
    (``foxnb.engines._jit.nonzero``); None keeps numba's pipeline and lowering as they are.
    """

    parallel: bool = False
    fastmath: bool | frozenset[str] = False
    error_model: ErrorModel = "python"
    boundscheck: bool = False
    cache: bool = True
    force: bool = False
    strict: bool = False
    verbose: bool = False
    opt_level: int | None = 3

    def key_part(self) -> str:
        return (f"parallel={self.parallel};fastmath={fastmath_text(fastmath_flags(self.fastmath))};"
                f"error_model={self.error_model};boundscheck={self.boundscheck};"
                f"pipeline={'numba' if self.opt_level is None else self.opt_level}")

    def targetoptions(self) -> dict[str, Any]:
        flags = fastmath_flags(self.fastmath)
        return {"nopython": True, "parallel": self.parallel,
                "fastmath": flags if isinstance(flags, bool) else set(flags),
                "error_model": self.error_model, "boundscheck": self.boundscheck}


class Capabilities(NamedTuple):
    """What an engine can do; the registry and the magics ask instead of naming engines.

    Attributes
    ----------
    needs_signatures : bool
        Functions must carry explicit types (``--sig`` or annotations).
    builds_cells : bool
        All functions of a cell are built together (one library), eagerly.
    lazy : bool
        Code is compiled on first call, per argument types.
    callable_from_numba : bool
        numba code can call what it builds (natively, or through the handle its
        ``numba_callable(obj)`` returns).
    supports_parallel : bool
        ``parallel=True`` (``prange``) is available.
    rebuilds_in_place : bool
        A rebuilt function can take the place of the object already bound (stable names):
        the engine's ``adopt(old, new)`` makes it so and returns the object to bind.
    """

    needs_signatures: bool = False
    builds_cells: bool = False
    lazy: bool = False
    callable_from_numba: bool = False
    supports_parallel: bool = False
    rebuilds_in_place: bool = False


class EngineContext(NamedTuple):
    """What the caller passes to an engine: the cache store, the orchestrator, the settings.

    ``store`` is None when the disk cache is switched off for this build.
    """

    store: Any
    orchestrator: Any
    settings: Any

    @classmethod
    def current(cls) -> "EngineContext":
        """The process-wide cache store, orchestrator and settings."""
        from foxnb.configuration import settings
        from foxnb.orchestrator import get_orchestrator

        return cls(store=current_store(), orchestrator=get_orchestrator(), settings=settings())


def current_store() -> Any:
    """The process-wide cache store, or None when the disk cache is off."""
    from foxnb.cache import get_store
    from foxnb.configuration import settings

    return get_store() if settings().cache_enabled else None


class BuildSpec(NamedTuple):
    """What an engine needs to build one function.

    ``globals`` is the dict foxnb controls: the compiler resolves callees and constants
    from it, so a change is detected by comparing it with the namespace.
    """

    function: FunctionDef
    globals: dict[str, Any]
    options: Any  # the engine's own options type
    key: str
    uncacheable: str = ""  # why the disk cache is off for this function, if it is
    # Default values, evaluated once when the ``def`` ran (Python's semantics).
    defaults: tuple[Any, ...] | None = None
    kwdefaults: dict[str, Any] | None = None
    # The user's namespace: a function that runs as plain Python reads and writes its
    # globals there, as it would without foxnb (``global counter; counter += 1``).
    namespace: dict[str, Any] | None = None
    # Returns, when called, a fingerprint of every global value the compiler will read for
    # this function and its fox callees, as they are *now*: the cache entry key is made from
    # it when numba compiles (on first call), not when the function was defined.
    observed: Callable[[], str | None] | None = None


class BuildGroup(NamedTuple):
    """The functions of one cell that one engine builds, with the cell's other functions
    (for messages that name cell lines) and the group's key."""

    specs: tuple[BuildSpec, ...]
    key: str
    cell_functions: Mapping[str, FunctionDef] = MappingProxyType({})

    @property
    def options(self) -> Any:
        return self.specs[0].options


class BuildResult(NamedTuple):
    """Objects to bind, by name, and what the engine has to report about the build."""

    objects: dict[str, Any]
    report: Any = None  # e.g. the AOT library: ``-v`` prints ``str(report)``
    # Facts for the task record of a build that ran no task (``Engine.cached``)
    detail: Mapping[str, Any] | None = None


class Engine(Protocol):
    """Builds callables for the fox functions of a cell.

    Attributes
    ----------
    name : str
        The name cells and plugins use (``compile_cell(..., engine=name)``).
    options_type : type
        The engine's options: a ``NamedTuple`` (or a frozen dataclass) with ``force``,
        ``verbose`` and ``key_part``.
    capabilities : Capabilities
        What the engine can do.
    fallback : str, optional
        For an engine that builds eagerly (``builds_cells``): the engine that builds the
        same functions when this one cannot (its toolchain fails, its circuit breaker is
        open). The registry runs the two as the orchestrator's fallback chain; options the
        two share (error model, fastmath...) carry over. ThunderFox falls back to WaterFox,
        which falls back to Python per call.

    An engine that builds eagerly may also have ``cached(group, store) -> BuildResult | None``:
    the build loaded from the cache ``store`` (None when the disk cache is off) when it
    holds it, else None. The registry asks it first and records a hit as a finished task
    (with the result's ``detail``) without running the fallback chain: a cache hit compiles
    nothing, and a fresh kernel's warm cell then needs no orchestrator.
    """

    name: str
    options_type: type[Any]
    capabilities: Capabilities

    def key_part(self, options: Any) -> str:
        """What besides sources, values and options changes this engine's code (toolchain,
        settings), as text for the key."""
        ...

    def build(self, group: BuildGroup, context: EngineContext) -> BuildResult:
        """Build ``group``; return one object per function (may compile lazily)."""
        ...


def option_names(options_type: type[Any]) -> tuple[str, ...]:
    """The option names of an options type: a ``NamedTuple`` or a dataclass."""
    names: tuple[str, ...] | None = getattr(options_type, "_fields", None)
    if names is None:
        import dataclasses

        names = tuple(f.name for f in dataclasses.fields(options_type))
    return names


def make_options(engine: Engine, **keywords: Any) -> Any:
    """The engine's options from keywords (unknown names are a ``TypeError`` naming them)."""
    known = set(option_names(engine.options_type))
    unknown = sorted(set(keywords) - known)
    if unknown:
        raise TypeError(f"engine {engine.name!r} has no option {', '.join(map(repr, unknown))}; "
                        f"its options are {', '.join(sorted(known))}")
    return engine.options_type(**keywords)


_BUILTIN = {"python": "foxnb.engines.python", "jit": "foxnb.engines.jit",
            "aot": "foxnb.engines.aot"}
_lock = threading.Lock()
_ENGINES: dict[str, Engine] = {}


def register_engine(engine: Engine, *, replace: bool = False) -> None:
    """Make ``engine`` available under ``engine.name`` (plugins call this).

    Raises
    ------
    ValueError
        The name is taken (pass ``replace=True`` to override) or the engine lacks part of
        the protocol.
    """
    missing = [a for a in ("name", "options_type", "capabilities", "key_part", "build")
               if not hasattr(engine, a)]
    if missing:
        raise ValueError(f"{engine!r} is not a foxnb engine: it lacks {', '.join(missing)}")
    with _lock:
        if not replace and (engine.name in _ENGINES or engine.name in _BUILTIN):
            raise ValueError(f"an engine called {engine.name!r} exists; pass replace=True")
        _ENGINES[engine.name] = engine


def unregister_engine(name: str) -> None:
    """Remove a plugin engine (built-in engines stay available)."""
    with _lock:
        _ENGINES.pop(name, None)


def engine_names() -> Sequence[str]:
    """Names of every engine: built-in and registered."""
    with _lock:
        return sorted({*_BUILTIN, *_ENGINES})


def _loaded_engines() -> list[Engine]:
    """The engines in use: registered ones and built-in ones whose module is imported
    (an engine not loaded yet built nothing that could be around)."""
    import sys

    return [get_engine(name) for name in engine_names()
            if _BUILTIN.get(name) is None or _BUILTIN[name] in sys.modules]


def numba_converters() -> list[Callable[[Any], Any]]:
    """Each loaded engine's ``numba_callable(value)``: a handle numba code can call for an
    object that engine built (an AOT function: its native code), or None for other objects."""
    found = []
    for engine in _loaded_engines():
        convert = getattr(engine, "numba_callable", None)
        if convert is not None:
            found.append(convert)
    return found


def flush_engines() -> None:
    """Let each loaded engine finish deferred work (e.g. WaterFox writes cache entries a
    callee compiled under a plain numba caller's lock): its optional ``flush()``."""
    for engine in _loaded_engines():
        flush = getattr(engine, "flush", None)
        if flush is not None:
            flush()


def get_engine(name: str) -> Engine:
    """Return the engine called ``name`` (a built-in one's module is imported on first use)."""
    with _lock:
        found = _ENGINES.get(name)
    if found is not None:
        return found
    try:
        module = importlib.import_module(_BUILTIN[name])
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; choose one of "
                         f"{', '.join(engine_names())}") from None
    engine: Engine = module.ENGINE
    return engine
