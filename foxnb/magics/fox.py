"""``%%fox`` (WaterFox under a strategy, ``auto`` by default), ``%foxmode`` and
``%foxcompare``."""

from __future__ import annotations

import ast
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from foxnb.errors import FoxnbUsageError
from foxnb.magics import cell_correlation_id

__all__ = ["StrategyMagics"]


@magics_class
class StrategyMagics(Magics):  # type: ignore[misc]
    """``%%fox``, ``%foxmode`` and ``%foxcompare``."""

    @magic_arguments()
    @argument("--strategy", choices=["auto", "jit", "aot", "python"], default="auto",
              help="auto (default): count calls, then benchmark tuned variants in the "
                   "background and run the fastest one whose results equal the baseline's; "
                   "jit: WaterFox only; aot: ThunderFox's library per signature; python: "
                   "the plain function.")
    @argument("--tolerance", type=float, default=None,
              help="Relative difference a variant's results may have (default: the "
                   "auto_tolerance setting, 0: exactly equal).")
    @argument("--threshold", type=int, default=None,
              help="Calls of a signature before its variants are benchmarked (default: the "
                   "auto_threshold setting, 50).")
    @argument("--allow-fastmath", action="store_true",
              help="Also try full fast-math (results may change within --tolerance).")
    @argument("-f", "--force", action="store_true", help="Recompile even if cached.")
    @argument("-v", "--verbose", action="store_true",
              help="Report compiles, and the variant each benchmark chose.")
    @cell_magic
    def fox(self, line: str, cell: str) -> Any:
        """Compile the cell's functions with WaterFox and let a strategy pick the code.

        Example::

            %%fox --threshold 20
            def pairsum(x, n): ...

        ``foxnb.explain(pairsum)`` says what runs and what was tried.
        """
        from foxnb.cells import compile_cell
        from foxnb.engines.base import JitOptions
        from foxnb.magics.jit import transform_ipython_syntax
        from foxnb.strategies import FoxOptions

        args = parse_argstring(self.fox, line)
        if not cell.strip():
            raise UsageError("%%fox needs a cell body: put one or more `def` statements under "
                             "the %%fox line.")
        from foxnb.configuration import settings

        current = settings()  # a magic option wins over the configuration
        options = FoxOptions(jit=JitOptions(force=args.force, verbose=args.verbose),
                             strategy=args.strategy,
                             tolerance=current.auto_tolerance if args.tolerance is None
                             else args.tolerance,
                             threshold=current.auto_threshold if args.threshold is None
                             else args.threshold, allow_fastmath=args.allow_fastmath)
        try:
            options.new_strategy("")  # bad values are usage errors before anything runs
            result = compile_cell(transform_ipython_syntax(cell, line_offset=1),
                                  self.shell.user_ns, options=options, engine="fox",
                                  line_offset=1,
                                  correlation_id=cell_correlation_id(self.shell))
        except FoxnbUsageError as exc:
            raise UsageError(f"%%fox: {exc}") from None
        if args.verbose:
            print(result.report().replace("foxjit:", "fox:"))
        return result.value

    @line_magic
    def foxmode(self, line: str) -> None:
        """``%foxmode python|jit|aot|auto [names...]``: switch fox functions in place (no
        names: every fox function of the namespace)."""
        from foxnb.registry import registry_for
        from foxnb.strategies import MODES, switch

        words = line.split()
        if not words or words[0] not in MODES:
            raise UsageError(f"%foxmode takes a mode ({', '.join(MODES)}) and optionally "
                             "names, e.g. %foxmode aot pairsum")
        mode, names = words[0], words[1:]
        ns = self.shell.user_ns
        records = registry_for(ns).records
        for name in names:
            if name not in records:
                known = ", ".join(sorted(records)) or "none"
                raise UsageError(f"%foxmode: {name!r} is not a fox function (fox functions: "
                                 f"{known})")
        for name in names or [n for n, r in records.items()
                              if not getattr(r.obj, "__foxnb_plain__", False)]:
            try:
                switch(records[name].obj, mode, namespace=ns)
            except FoxnbUsageError as exc:
                raise UsageError(f"%foxmode: {exc}") from None

    @line_magic
    def foxcompare(self, line: str) -> Any:
        """``%foxcompare f(args)``: time one call of ``f`` under every strategy (plain
        ``@njit`` is the baseline); results must be equal."""
        from foxnb.comparison import compare

        try:
            call = ast.parse(line.strip(), mode="eval").body
        except SyntaxError:
            call = None
        if not isinstance(call, ast.Call) or call.keywords:
            raise UsageError("%foxcompare takes one call with positional arguments, "
                             "e.g. %foxcompare pairsum(x, 2000)")
        ns = self.shell.user_ns
        func = eval(compile(ast.Expression(call.func), "<foxcompare>", "eval"), ns)
        values = tuple(eval(compile(ast.Expression(a), "<foxcompare>", "eval"), ns)
                       for a in call.args)
        try:
            return compare(func, setup=lambda n: values, n_range=[1], namespace=ns)
        except FoxnbUsageError as exc:
            raise UsageError(f"%foxcompare: {exc}") from None
