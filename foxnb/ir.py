"""The CellUnit: a parsed cell, its functions, the globals they read, and content hashes.

Line numbers in a unit are the lines a user sees in the notebook: with ``line_offset=1``
(the default for cell magics) the magic line is line 1 and the body starts at line 2.
"""

import ast
import hashlib
import linecache
from collections import OrderedDict
from collections.abc import Mapping
from types import CodeType, MappingProxyType
from typing import NamedTuple

from foxnb._bytecode import scan

__all__ = ["CellUnit", "FunctionDef", "Segment", "build_unit", "find_function", "locate"]

# pseudo file name -> unit, to map compiler messages to lines; the most recent cells only
_UNITS: "OrderedDict[str, CellUnit]" = OrderedDict()
_MAX_UNITS = 512
_NO_ANNOTATIONS: Mapping[str, str] = MappingProxyType({})

# The records of this module (and of the other modules a warm cell imports) are NamedTuples:
# immutable like frozen dataclasses, and about 6x cheaper to create at import (a fresh
# kernel's first cell pays for every class on its path).


class FunctionDef(NamedTuple):
    """One top-level ``def`` of a cell.

    Attributes
    ----------
    name : str
        The function's name.
    source : str
        The exact text of the definition.
    lineno : int
        Line of the ``def`` in the cell (notebook numbering).
    code : CodeType
        Module code that, executed in a globals dict, defines the function (evaluating its
        default values there).
    globals_read : tuple of str
        Names the definition loads as globals (body, nested functions and default values),
        sorted.
    global_attrs : tuple of (str, str)
        ``(global, attribute)`` pairs read directly, e.g. ``("np", "sqrt")``.
    arg_names : tuple of str
        Parameter names, in order.
    annotations : Mapping
        Annotation text per parameter (and ``"return"``), as written.
    func_code : CodeType or None
        The function's own code object (no defaults: those are evaluated once, at ``def``).
    body_globals : tuple of str
        Globals the body (and nested functions) loads: what compiled code reads.
    default_names : tuple of str
        Globals only the default values read (Python evaluates them once, at ``def``).
    kwonly : tuple of str
        Keyword-only parameter names.
    varargs : bool
        Whether the function takes ``*args`` or ``**kwargs``.
    has_defaults : bool
        Whether any parameter has a default value.
    globals_written : tuple of str
        Globals the body assigns or deletes (``global counter; counter += 1``).
    """

    name: str
    source: str
    lineno: int
    filename: str
    code: CodeType
    globals_read: tuple[str, ...]
    global_attrs: tuple[tuple[str, str], ...]
    arg_names: tuple[str, ...]
    annotations: Mapping[str, str] = _NO_ANNOTATIONS
    func_code: CodeType | None = None
    body_globals: tuple[str, ...] = ()
    default_names: tuple[str, ...] = ()
    kwonly: tuple[str, ...] = ()
    varargs: bool = False
    has_defaults: bool = False
    globals_written: tuple[str, ...] = ()

    def line_text(self, line: int) -> str:
        """Return the stripped text of cell line ``line`` if it lies in this function."""
        lines = self.source.splitlines()
        index = line - self.lineno
        return lines[index].strip() if 0 <= index < len(lines) else ""

    def annotation_signature(self) -> str | None:
        """A numba signature built from the annotations, or None unless every parameter has one.

        ``def f(x: "float64[::1]", n: "int64") -> "float64"`` gives
        ``"float64(float64[::1], int64)"``; without a return annotation numba infers the
        return type (``"(float64[::1], int64,)"``).
        """
        if any(a not in self.annotations for a in self.arg_names):
            return None
        if not self.arg_names and "return" not in self.annotations:
            return None  # nothing annotated at all
        args = ", ".join(self.annotations[a] for a in self.arg_names)
        ret = self.annotations.get("return")
        return f"{ret}({args})" if ret else f"({args},)"  # no return type: numba infers it


class Segment(NamedTuple):
    """A run of plain statements (``code``) or of consecutive fox functions (``functions``)."""

    code: CodeType | None = None
    functions: tuple[FunctionDef, ...] = ()
    is_expression: bool = False


class CellUnit(NamedTuple):
    """A parsed cell: its segments in order and its functions."""

    cell: str
    filename: str
    segments: tuple[Segment, ...]
    functions: dict[str, FunctionDef]

    def call_graph(self) -> dict[str, set[str]]:
        """Which functions of this cell each function of this cell reads (calls)."""
        names = set(self.functions)
        return {n: set(f.globals_read) & names for n, f in self.functions.items()}

    def function_at(self, line: int) -> FunctionDef | None:
        """The function whose definition spans cell line ``line``."""
        for fn in self.functions.values():
            if fn.lineno <= line < fn.lineno + len(fn.source.splitlines()):
                return fn
        return None


def _compile(node: ast.Module | ast.Expression, filename: str, mode: str) -> CodeType:
    # dont_inherit: this module's `from __future__ import annotations` must not leak into cells
    return compile(node, filename, mode, dont_inherit=True)


def _annotation_text(node: ast.expr | None) -> str | None:
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return ast.unparse(node)


def _is_fox_def(node: ast.stmt) -> bool:
    # Decorated functions keep their decorators' meaning: they run as plain statements.
    return isinstance(node, ast.FunctionDef) and not node.decorator_list


def _bare_arg(arg: ast.arg) -> ast.arg:
    """``arg`` without its annotation, at its place in the cell."""
    return ast.copy_location(ast.arg(arg=arg.arg), arg)


def _function(node: ast.FunctionDef, lines: list[str], filename: str) -> FunctionDef:
    annotations: dict[str, str] = {}
    args = node.args
    params = [*args.posonlyargs, *args.args]
    for a in params:
        text = _annotation_text(a.annotation)
        if text is not None:
            annotations[a.arg] = text
    ret = _annotation_text(node.returns)
    if ret is not None:
        annotations["return"] = ret
    # Annotations are numba type names, not Python objects: drop them before compiling. The
    # new nodes take their originals' locations (fix_missing_locations would walk the body).
    bare = ast.FunctionDef(
        name=node.name,
        args=ast.arguments(
            posonlyargs=[_bare_arg(a) for a in args.posonlyargs],
            args=[_bare_arg(a) for a in args.args],
            vararg=args.vararg and _bare_arg(args.vararg),
            kwonlyargs=[_bare_arg(a) for a in args.kwonlyargs],
            kw_defaults=args.kw_defaults,
            kwarg=args.kwarg and _bare_arg(args.kwarg), defaults=args.defaults),
        body=node.body, decorator_list=[], returns=None, type_comment=None)
    ast.copy_location(bare, node)
    code = _compile(ast.Module(body=[bare], type_ignores=[]), filename, "exec")
    end = node.end_lineno or node.lineno
    func_code = next(c for c in code.co_consts if isinstance(c, CodeType))
    # The module code loads only what the default values read; the body is the function's.
    defaults, default_attrs, _ = scan(code, nested=False)
    body, body_attrs, written = scan(func_code)
    return FunctionDef(
        name=node.name,
        source="\n".join(lines[node.lineno - 1:end]),
        lineno=node.lineno,
        filename=filename,
        code=code,
        globals_read=tuple(sorted({*defaults, *body})),
        global_attrs=tuple(sorted({*default_attrs, *body_attrs})),
        arg_names=tuple(a.arg for a in params),
        annotations=annotations,
        func_code=func_code,
        body_globals=body,
        default_names=defaults,
        kwonly=tuple(a.arg for a in args.kwonlyargs),
        varargs=args.vararg is not None or args.kwarg is not None,
        has_defaults=bool(args.defaults) or any(d is not None for d in args.kw_defaults),
        globals_written=written,
    )


def build_unit(cell: str, *, line_offset: int = 1, kind: str = "foxjit") -> CellUnit:
    """Parse a cell into a :class:`CellUnit`.

    Parameters
    ----------
    cell : str
        The cell body (without the magic line).
    line_offset : int
        Lines above the body in the notebook (1 for the ``%%foxjit`` line).
    kind : str
        Used in the pseudo file name shown in tracebacks and compiler messages.

    Raises
    ------
    SyntaxError
        When the cell is not valid Python (line numbers as in the notebook).
    """
    text = "\n" * line_offset + cell
    filename = f"<{kind}-cell-{hashlib.sha256(cell.encode()).hexdigest()[:10]}>"
    lines = text.splitlines()
    tree = ast.parse(text, filename=filename)
    # Register the text so tracebacks and numba's messages can show cell lines.
    linecache.cache[filename] = (len(text), None, [ln + "\n" for ln in lines], filename)

    segments: list[Segment] = []
    defs: list[FunctionDef] = []

    def statement(node: ast.stmt, final: bool) -> Segment:
        # One segment per statement: fox functions are brought up to date before each one
        # (a constant rebound between two calls is seen by the second).
        if final and isinstance(node, ast.Expr):  # the cell's value
            expr = ast.Expression(body=node.value)
            return Segment(code=_compile(expr, filename, "eval"), is_expression=True)
        return Segment(code=_compile(ast.Module(body=[node], type_ignores=[]), filename, "exec"))

    def flush_defs() -> None:
        if defs:
            segments.append(Segment(functions=tuple(defs)))
            defs.clear()

    for index, node in enumerate(tree.body):
        if _is_fox_def(node):
            assert isinstance(node, ast.FunctionDef)
            defs.append(_function(node, lines, filename))
        else:
            flush_defs()
            segments.append(statement(node, final=index == len(tree.body) - 1))
    flush_defs()

    functions: dict[str, FunctionDef] = {}
    for seg in segments:
        for fn in seg.functions:
            functions[fn.name] = fn
    unit = CellUnit(cell=cell, filename=filename, segments=tuple(segments), functions=functions)
    _UNITS[filename] = unit
    _UNITS.move_to_end(filename)
    while len(_UNITS) > _MAX_UNITS:
        _UNITS.popitem(last=False)
    return unit


def locate(filename: str, line: int) -> FunctionDef | None:
    """The function of a parsed cell that spans ``line`` of pseudo file ``filename``."""
    unit = _UNITS.get(filename)
    return unit.function_at(line) if unit is not None else None


def find_function(name: str) -> FunctionDef | None:
    """The most recently parsed function called ``name``, in any cell."""
    for unit in reversed(list(_UNITS.values())):
        if name in unit.functions:
            return unit.functions[name]
    return None
