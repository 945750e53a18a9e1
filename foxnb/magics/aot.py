"""``%%foxaot``: parse the options, hand the cell to ThunderFox, bind, report."""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class

from foxnb.cells import compile_cell
from foxnb.engines.aot import AotOptions, export
from foxnb.engines.base import FASTMATH_HELP
from foxnb.errors import FoxnbUsageError
from foxnb.magics import argument, cell_correlation_id, lazy_magic_arguments, magic_fastmath

__all__ = ["AotMagics"]


@magics_class
class AotMagics(Magics):  # type: ignore[misc]
    """ThunderFox's cell magic."""

    @cell_magic
    @lazy_magic_arguments  # the parser and its help text are built on first use
    @argument("--sig", action="append", default=[], metavar="NAME:SIG",
              help='Export NAME with a numba signature, e.g. --sig "pairsum:float64(float64[::1], '
                   'int64)". Repeatable. String annotations work too.')
    @argument("-O", dest="opt_level", type=int, choices=[0, 1, 2, 3], default=None,
              help="LLVM optimisation level (default: the opt_level setting, else 3; loop and "
                   "SLP vectorisation from 2).")
    @argument("--error-model", choices=["python", "numpy"], default=None,
              help="'numpy' (default): x/0 gives inf/nan, so loops keep no Python raise path and "
                   "vectorise, as C code would; 'python' raises ZeroDivisionError.")
    @argument("--fastmath", nargs="?", const=True, default=False, metavar="FLAGS",
              help=FASTMATH_HELP)
    @argument("--boundscheck", action="store_true",
              help="Check array indices (IndexError instead of reading past the end).")
    @argument("--nogil", action="store_true",
              help="Release the GIL during calls so other threads run meanwhile (costs "
                   "~0.1 µs a call: for calls that run long).")
    @argument("--parallel", action="store_true",
              help="Not supported ahead of time; use %%%%foxjit --parallel.")
    @argument("--name", help="Library name (a C identifier) for the .so and .h files.")
    @argument("--export", metavar="DIR",
              help="Also write the .so, the .h and a C example (main.c) into DIR.")
    @argument("-f", "--force", action="store_true", help="Rebuild even if cached.")
    @argument("-v", "--verbose", action="store_true",
              help="Report the library: built or loaded, ms per phase, signatures, inlining.")
    def foxaot(self, line: str, cell: str) -> Any:
        """Compile the cell's functions ahead of time into a shared library with a C header.

        Example::

            %%foxaot -v --sig "pairsum:float64(float64[::1], int64)"
            def pairsum(x, n):
                s = 0.0
                for i in range(n):
                    for j in range(i + 1, n):
                        s += 1.0 / (1.0 + abs(x[i] - x[j]))
                return s

        The library is cached: a restarted kernel loads it without importing numba.
        """
        args = self.foxaot.parse(line)
        if not cell.strip():
            raise UsageError("%%foxaot needs a cell body: put the `def` statements to compile "
                             "under the %%foxaot line.")
        name = args.name.strip("'\"") if args.name else None
        from foxnb.configuration import settings

        current = settings()  # a magic option wins over the configuration
        opt_level = args.opt_level if args.opt_level is not None else current.opt_level
        options = AotOptions(opt_level=3 if opt_level is None else opt_level,
                             error_model=args.error_model or current.error_model or "numpy",
                             fastmath=magic_fastmath("%%foxaot", args.fastmath),
                             parallel=args.parallel, name=name,
                             sigs=tuple(args.sig), boundscheck=args.boundscheck,
                             nogil=args.nogil, force=args.force, verbose=args.verbose)
        try:
            result = compile_cell(cell, self.shell.user_ns, options=options, engine="aot",
                                  line_offset=1, correlation_id=cell_correlation_id(self.shell))
        except FoxnbUsageError as exc:
            raise UsageError(str(exc)) from None
        for library in result.reports:
            if args.verbose:
                print(library.report())
            if args.export:
                out = export(library, args.export.strip("'\""))
                print(f"foxaot: wrote {library.name}.so, {library.name}.h and main.c to {out}")
        return result.value
