"""Run a cell through foxnb: plain statements in the namespace, functions through an engine.

This is the library entry point behind ``%%foxjit``; scripts can call it directly::

    import foxnb
    ns = {}
    foxnb.compile_cell('''
    def sq(x):
        return x * x
    ''', ns)
    ns["sq"](3.0)   # compiled by numba on this first call
"""

import builtins
from typing import TYPE_CHECKING, Any, NamedTuple

from foxnb.engines.base import get_engine
from foxnb.errors import FoxnbUsageError
from foxnb.ir import build_unit
from foxnb.orchestrator.context import correlation_scope, current_correlation_id
from foxnb.registry import Change, registry_for

if TYPE_CHECKING:
    from foxnb.engines.aot import AotCellResult, AotOptions

__all__ = ["CellResult", "compile_aot_cell", "compile_cell"]


class CellResult(NamedTuple):
    """What running a cell did.

    Attributes
    ----------
    functions : list of str
        Fox functions the cell defined, in order.
    changes : list of Change
        For every fox function in the namespace: new, rebuilt (and because of which
        callees) or unchanged.
    value : object
        The value of the cell's last expression, if it ends with one.
    reports : list
        What engines reported about builds the cell caused (an AOT library, ...).
    """

    functions: list[str]
    changes: list[Change]
    value: Any
    correlation_id: str | None
    reports: list[Any]

    def report(self) -> str:
        """One line per function that is new or rebuilt (used by ``-v``)."""
        lines = []
        for c in self.changes:
            if c.action == "unchanged" and c.name not in self.functions:
                continue
            why = f" (because {', '.join(c.because)} changed)" if c.because else ""
            lazy = "" if c.action == "unchanged" else "; compiled when called, per argument types"
            lines.append(f"foxjit: {c.name}: {c.action}{why}{lazy}")
        return "\n".join(lines)


def compile_cell(cell: str, namespace: dict[str, Any] | None = None, *,
                 options: Any = None, engine: str | None = None,
                 line_offset: int = 0, correlation_id: str | None = None) -> CellResult:
    """Run ``cell``: statements execute in ``namespace``, each top-level ``def`` is compiled.

    Parameters
    ----------
    cell : str
        Python source. Undecorated top-level functions become fox functions; everything
        else (imports, constants, decorated functions, calls) runs as ordinary Python.
    namespace : dict, optional
        Where statements run and names are bound (default: a new dict, see the result).
    options : optional
        The engine's options (``JitOptions`` for ``"jit"``, ``AotOptions`` for ``"aot"``);
        the engine's defaults when omitted.
    engine : str, optional
        ``"jit"`` compiles with numba lazily on first call; ``"aot"`` builds one shared
        library for the cell; ``"fox"`` runs the ``auto`` strategy; ``"python"`` binds
        plain functions; plugins add more (:func:`foxnb.engines.base.register_engine`).
        Default: the ``default_engine`` setting (``"jit"`` unless configured).
    line_offset : int
        Lines above ``cell`` in the notebook (1 under a cell magic), for messages.
    correlation_id : str, optional
        Recorded on every task this cell starts; a new id is made when omitted.

    Returns
    -------
    CellResult

    Raises
    ------
    SyntaxError
        If the cell is not valid Python.
    """
    ns: dict[str, Any] = {} if namespace is None else namespace
    ns.setdefault("__builtins__", builtins)
    ns.setdefault("__name__", "__main__")
    if engine is None:
        from foxnb.configuration import settings

        engine = settings().default_engine
    builder = get_engine(engine)
    options = options if options is not None else builder.options_type()
    together = builder.capabilities.builds_cells
    unit = build_unit(cell, line_offset=line_offset, kind=f"fox{engine}")
    if together and not unit.functions:
        raise FoxnbUsageError(f"%%fox{engine}: the cell defines no function to compile")
    registry = registry_for(ns)
    value: Any = None
    seen: dict[str, Change] = {}
    registry.reports.clear()  # what a post-cell refresh built was reported there already

    def merge(changes: list[Change]) -> None:
        for c in changes:
            if c.name not in seen or seen[c.name].action == "unchanged":
                seen[c.name] = c

    with correlation_scope(correlation_id or current_correlation_id()) as cid:
        merge(registry.refresh(ns))  # changes made by ordinary cells since the last fox cell
        # Cell-building engines get every function of the cell once, before the first
        # statement that follows a definition (or at the end).
        pending = together  # not defined yet
        seen_def = False
        for segment in unit.segments:
            if segment.functions:
                if not together:
                    merge(registry.define(segment.functions, options, ns, engine=engine))
                seen_def = True
                continue
            if pending and seen_def:
                merge(registry.define(list(unit.functions.values()), options, ns,
                                      engine=engine))
                pending = False
            merge(registry.refresh(ns))
            if segment.code is not None and segment.is_expression:
                value = eval(segment.code, ns)
            elif segment.code is not None:
                exec(segment.code, ns)
        if pending:
            merge(registry.define(list(unit.functions.values()), options, ns, engine=engine))
        merge(registry.refresh(ns))
    reports = registry.reports[:]
    registry.reports.clear()
    return CellResult(list(unit.functions), list(seen.values()), value, cid, reports)


def compile_aot_cell(cell: str, namespace: dict[str, Any] | None = None, *,
                     options: "AotOptions | None" = None, line_offset: int = 0,
                     correlation_id: str | None = None) -> "AotCellResult":
    """Run ``cell`` with its functions compiled ahead of time into one shared library.

    The same as ``compile_cell(cell, namespace, options=options, engine="aot")``, with the
    library in the result. Statements before the functions run first (imports, constants
    the functions read); the library is built (or loaded from the cache) before the first
    statement that follows a function, and its functions are bound in ``namespace``.

    Raises
    ------
    FoxnbUsageError
        A function lacks a signature, a ``--sig`` is malformed or names no function.
    FoxnbCompileError
        numba or LLVM cannot compile a function (the message names the cell line).
    """
    from foxnb.engines.aot import AotCellResult, AotLibrary, AotOptions

    result = compile_cell(cell, namespace, options=options or AotOptions(), engine="aot",
                          line_offset=line_offset, correlation_id=correlation_id)
    libraries = [r for r in result.reports if isinstance(r, AotLibrary)]
    return AotCellResult(library=libraries[-1] if libraries else None, value=result.value,
                         correlation_id=result.correlation_id)
