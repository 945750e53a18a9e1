"""``%%foxjit``: parse the options, hand the cell to :func:`foxnb.compile_cell`, report."""

from __future__ import annotations

import argparse
import ast
import difflib
from collections.abc import Sequence
from typing import Any

from IPython.core.error import UsageError
from IPython.core.inputtransformer2 import TransformerManager
from IPython.core.magic import cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from foxnb.cells import compile_cell
from foxnb.configuration import settings
from foxnb.engines.base import FASTMATH_HELP, JitOptions
from foxnb.magics import cell_correlation_id, magic_fastmath
from foxnb.magics.settings import FoxMagics as _Configurable

__all__ = ["FoxMagics", "transform_ipython_syntax"]

_OPTIONS = ("--parallel, --fastmath [FLAGS], --opt-level {0,1,2,3,numba}, "
            "--error-model {python,numpy}, --boundscheck, --no-cache, -f/--force, --strict, "
            "-v/--verbose")


class _Once(argparse.Action):
    """Store an option's value; the same option given twice is a usage error."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[Any] | None, option_string: str | None = None) -> None:
        seen: set[str] = namespace.__dict__.setdefault("_given", set())
        if self.dest in seen:
            raise argparse.ArgumentError(self, "given twice: give each option once")
        seen.add(self.dest)
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


class _Flag(_Once):
    """A ``store_true`` option that may be given once."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None
                 ) -> None:
        super().__init__(option_strings, dest, nargs=0, const=True, default=False, help=help)


def _opt_level(given: str | None, configured: int | None) -> int | None:
    """``--opt-level``'s value, else the setting's, else 3; None for numba's pipeline."""
    if given == "numba":
        return None
    if given is not None:
        return int(given)
    return 3 if configured is None else configured


def transform_ipython_syntax(cell: str, *, line_offset: int = 1) -> str:
    """Turn top-level IPython syntax (``%time ...``, ``!cmd``, ``x = !cmd``) into Python.

    The result has the cell's line numbering (lines IPython joins are padded with blank
    lines after them), so compiler messages keep naming notebook lines.

    Raises
    ------
    UsageError
        For IPython syntax inside a function (it cannot be compiled) and for a cell magic
        (``%%timeit``) anywhere in the body.
    """
    try:
        out = TransformerManager().transform_cell(cell)
    except SyntaxError:
        return cell  # compile_cell reports the syntax error with the cell's lines
    before, after = cell.splitlines(), out.splitlines()
    if [ln.strip() for ln in before] == [ln.strip() for ln in after]:
        return cell
    lines: list[str] = []
    changed: list[tuple[int, int]] = []  # (line in the result, line in the cell), 0-based
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            for j in range(j1, j2):
                changed.append((len(lines) + j - j1, min(i1 + j - j1, max(i1, i2 - 1))))
        lines += after[j1:j2]
        lines += [""] * max(0, (i2 - i1) - (j2 - j1))  # keep the cell's line numbers
    for _, i in changed:
        text = before[i].strip()
        if text.startswith("%%"):
            raise UsageError(
                f"%%foxjit: cell line {i + 1 + line_offset}: `{text}` is a cell magic; it only "
                f"works on the first line of a cell of its own. Put it in a separate cell, or "
                f"use a line magic (`{text[1:]}`) on one statement.")
    result = "\n".join(lines) + ("\n" if out.endswith("\n") else "")
    _reject_inside_functions(result, before, changed, line_offset)
    return result


def _reject_inside_functions(code: str, before: list[str], changed: list[tuple[int, int]],
                             line_offset: int) -> None:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return
    spans = [(node.name, node.lineno, node.end_lineno or node.lineno) for node in tree.body
             if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    lines = code.splitlines()
    for j, i in changed:
        if lines[j].strip() == before[i].strip():
            continue  # only re-indented (IPython dedents a cell indented as a whole)
        for name, first, last in spans:
            if first <= j + 1 <= last and before[i].strip():
                raise UsageError(
                    f"%%foxjit: cell line {i + 1 + line_offset}: `{before[i].strip()}` is IPython "
                    f"syntax inside {name}, which cannot run in compiled code: move it out of "
                    f"the function, to the top level of the cell.")


@magics_class
class FoxMagics(_Configurable):  # type: ignore[misc]
    """foxnb's cell magics (and, as ``%config FoxMagics.<knob>``, its configuration)."""

    @magic_arguments()
    @argument("--parallel", action=_Flag,
              help="Compile with parallel=True (numba.prange loops run on all cores).")
    @argument("--fastmath", action=_Once, nargs="?", const=True, default=False,
              metavar="FLAGS", help=FASTMATH_HELP)
    @argument("--opt-level", choices=["0", "1", "2", "3", "numba"], default=None, action=_Once,
              help="Level of ThunderFox's LLVM pipeline (%%%%foxaot's; default: the opt_level "
                   "setting, else 3: both vectorisers, run twice; divisions by a divisor that "
                   "cannot be zero lose their zero check). 'numba': numba's own pipeline, "
                   "as @njit.")
    @argument("--error-model", choices=["python", "numpy"], default=None, action=_Once,
              help="'python' (default; the error_model setting changes it) raises "
                   "ZeroDivisionError like Python; 'numpy' returns inf/nan and vectorises more "
                   "loops.")
    @argument("--boundscheck", action=_Flag,
              help="Check array indices (IndexError instead of undefined behaviour).")
    @argument("--no-cache", action=_Flag,
              help="Neither read nor write the on-disk cache for these functions.")
    @argument("-f", "--force", action=_Flag,
              help="Recompile even when an unchanged compiled version exists.")
    @argument("--strict", action=_Flag,
              help="Raise FoxnbCompileError instead of falling back to Python.")
    @argument("-v", "--verbose", action=_Flag,
              help="Report each function: new/rebuilt, compile ms, cache hit or miss, signature.")
    @cell_magic
    def foxjit(self, line: str, cell: str) -> Any:
        """Compile every top-level ``def`` of the cell with numba, lazily, on first call.

        Other statements (imports, constants, calls) run as usual, and so do line magics and
        shell commands between the functions (``%time x = f(1)``, ``!ls``); inside a function
        they are a usage error. Redefining a function in any later cell makes every fox
        function that calls it use the new version.

        Example::

            %%foxjit -v
            import numpy as np

            def pairsum(x, n):
                s = 0.0
                for i in range(n):
                    for j in range(i + 1, n):
                        s += 1.0 / (1.0 + abs(x[i] - x[j]))
                return s

            pairsum(np.random.rand(2000), 2000)
        """
        try:
            args = parse_argstring(self.foxjit, line)
        except UsageError as exc:
            raise UsageError(f"%%foxjit: {exc}. Options: {_OPTIONS} (see %%foxjit?).") from None
        if not cell.strip():
            raise UsageError("%%foxjit needs a cell body: put one or more `def` statements "
                             "under the %%foxjit line.")
        cell = transform_ipython_syntax(cell, line_offset=1)
        current = settings()  # a magic option wins over the configuration
        options = JitOptions(parallel=args.parallel,
                             fastmath=magic_fastmath("%%foxjit", args.fastmath),
                             opt_level=_opt_level(args.opt_level, current.opt_level),
                             error_model=args.error_model or current.error_model or "python",
                             boundscheck=args.boundscheck,
                             cache=not args.no_cache, force=args.force, strict=args.strict,
                             verbose=args.verbose)
        result = compile_cell(cell, self.shell.user_ns, options=options, line_offset=1,
                              correlation_id=cell_correlation_id(self.shell))
        if args.verbose:
            report = result.report()
            if report:
                print(report)
        return result.value
