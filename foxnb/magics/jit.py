"""``%%foxjit``: parse the options, hand the cell to :func:`foxnb.compile_cell`, report."""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from foxnb.cells import compile_cell
from foxnb.engines.base import JitOptions
from foxnb.magics import cell_correlation_id

__all__ = ["FoxMagics"]


@magics_class
class FoxMagics(Magics):  # type: ignore[misc]
    """foxnb's cell magics."""

    @magic_arguments()
    @argument("--parallel", action="store_true",
              help="Compile with parallel=True (numba.prange loops run on all cores).")
    @argument("--fastmath", action="store_true",
              help="Allow LLVM fast-math (reassociation, no NaN/inf checks).")
    @argument("--error-model", choices=["python", "numpy"], default="python",
              help="'python' raises ZeroDivisionError like Python; 'numpy' returns inf/nan and "
                   "vectorises more loops.")
    @argument("--boundscheck", action="store_true",
              help="Check array indices (IndexError instead of undefined behaviour).")
    @argument("--no-cache", action="store_true",
              help="Neither read nor write the on-disk cache for these functions.")
    @argument("-f", "--force", action="store_true",
              help="Recompile even when an unchanged compiled version exists.")
    @argument("--strict", action="store_true",
              help="Raise FoxnbCompileError instead of falling back to Python.")
    @argument("-v", "--verbose", action="store_true",
              help="Report each function: new/rebuilt, compile ms, cache hit or miss, signature.")
    @cell_magic
    def foxjit(self, line: str, cell: str) -> Any:
        """Compile every top-level ``def`` of the cell with numba, lazily, on first call.

        Other statements (imports, constants, calls) run as usual. Redefining a function in
        any later cell makes every fox function that calls it use the new version.

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
        args = parse_argstring(self.foxjit, line)
        if not cell.strip():
            raise UsageError("%%foxjit needs a cell body: put one or more `def` statements "
                             "under the %%foxjit line.")
        options = JitOptions(parallel=args.parallel, fastmath=args.fastmath,
                             error_model=args.error_model, boundscheck=args.boundscheck,
                             cache=not args.no_cache, force=args.force, strict=args.strict,
                             verbose=args.verbose)
        result = compile_cell(cell, self.shell.user_ns, options=options, line_offset=1,
                              correlation_id=cell_correlation_id(self.shell))
        if args.verbose:
            report = result.report()
            if report:
                print(report)
        return result.value
