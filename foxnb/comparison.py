"""``foxnb.compare``: the same function under several strategies, timed across sizes.

Each strategy is built from the function's source: ``numba`` (plain ``@njit``, the
baseline), ``python``, ``jit`` (``%%foxjit``), ``aot`` (``%%foxaot`` for the signature of
the arguments) and ``auto`` (the variant ``%%fox``'s benchmark picks). Results are checked for
equality first (a difference raises :class:`ComparisonError` naming the strategy and ``n``);
times are taken by the house method (rounds, rotated order, thread CPU time, medians with
the interquartile range). pandas and plotly are imported only here.
"""

from __future__ import annotations

import inspect
import sys
import textwrap
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from foxnb.errors import FoxnbError, FoxnbUsageError
from foxnb.plugin import BUILTIN_STRATEGIES as STRATEGIES

__all__ = ["STRATEGIES", "Comparison", "ComparisonError", "compare"]

_TEMPLATES = {"light": "plotly_white", "dark": "plotly_dark"}


class ComparisonError(FoxnbError):
    """Two strategies returned different results for the same arguments."""


class Comparison:
    """Times of strategies across sizes.

    Attributes
    ----------
    df : pandas.DataFrame
        One row per (strategy, n): ``strategy``, ``n``, ``median``, ``q1``, ``q3`` (seconds
        per call, thread CPU time), ``wall`` (median wall seconds) and ``speedup`` (median
        over rounds of baseline time / strategy time).
    baseline : str
        The strategy speedups are relative to.
    """

    def __init__(self, rows: list[dict[str, Any]], baseline: str) -> None:
        import pandas as pd

        self.df = pd.DataFrame(rows, columns=["strategy", "n", "median", "q1", "q3", "wall",
                                              "speedup"])
        self.baseline = baseline

    def figure(self, template: str = "light") -> Any:
        """A plotly figure: time per call against n (log-log) and the speedup against the
        baseline. ``template``: ``"light"``, ``"dark"`` or any plotly template name."""
        from plotly.subplots import make_subplots

        fig = make_subplots(rows=1, cols=2, subplot_titles=(
            "time per call (s, thread CPU, median; bars: IQR)", f"speedup vs {self.baseline}"))
        for strategy, part in self.df.groupby("strategy", sort=False):
            fig.add_scatter(x=part["n"], y=part["median"], name=str(strategy),
                            legendgroup=str(strategy), mode="lines+markers",
                            error_y={"type": "data", "symmetric": False,
                                     "array": part["q3"] - part["median"],
                                     "arrayminus": part["median"] - part["q1"]},
                            row=1, col=1)
            fig.add_scatter(x=part["n"], y=part["speedup"], name=str(strategy),
                            legendgroup=str(strategy), showlegend=False, mode="lines+markers",
                            row=1, col=2)
        fig.update_xaxes(type="log", title_text="n")
        fig.update_yaxes(type="log", row=1, col=1)
        fig.update_layout(template=_TEMPLATES.get(template, template))
        return fig

    def _repr_html_(self) -> str:
        table: str = self.df.to_html(index=False, float_format=lambda v: f"{v:.4g}")
        return f"<div class='foxnb-compare'>{table}</div>"

    def __repr__(self) -> str:
        return str(self.df.to_string(index=False))


class _Subject:
    """One function to compare: its name, source and the globals it reads."""

    def __init__(self, func: Any, namespace: dict[str, Any] | None) -> None:
        from foxnb.engines.jit import FoxDispatcher

        fn = getattr(func, "_fox_function", None)
        if isinstance(func, FoxDispatcher) and fn is not None:
            self.name, self.source = fn.name, fn.source
            self.globals: dict[str, Any] = dict(func.py_func.__globals__)
        elif type(func).__module__ == "foxnb._native._foxcall":
            from foxnb.strategies.api import _namespaces, _record

            rec, ns = _record(func, _namespaces(namespace))
            self.name, self.source, self.globals = rec.name, rec.function.source, dict(ns)
        elif inspect.isfunction(func):
            self.name = func.__name__
            self.source = textwrap.dedent(inspect.getsource(func))
            self.globals = dict(func.__globals__)
        else:
            raise FoxnbUsageError(f"foxnb.compare takes functions (plain or fox); got "
                                  f"{type(func).__name__}")
        self.globals.pop("__foxnb_registry__", None)
        self.globals.pop(self.name, None)

    def build(self, strategy: str) -> Callable[..., Any]:
        from foxnb.cells import compile_cell

        ns = dict(self.globals)
        if strategy == "python":
            exec(compile(self.source, f"<compare {self.name}>", "exec"), ns)
            fn: Callable[..., Any] = ns[self.name]
            return fn
        if strategy == "numba":
            import numba

            return numba.njit(self.build("python"))  # type: ignore[no-any-return]
        if strategy == "jit":
            compile_cell(self.source, ns, engine="jit")
        elif strategy in ("aot", "auto"):
            from foxnb.strategies import FoxOptions

            compile_cell(self.source, ns, engine="fox", options=FoxOptions(strategy=strategy))
        else:
            from foxnb import plugin

            provider = plugin.strategy_provider(strategy)
            if provider is None:
                raise FoxnbUsageError(f"unknown strategy {strategy!r}; choose from "
                                      f"{', '.join([*STRATEGIES, *plugin.strategy_providers()])}")
            return plugin.specialising(provider, plugin.PluginFunction(
                self.name, self.source, self.globals))
        fn = ns[self.name]
        return fn


def _progress(total: int, label: str) -> Callable[[int, str], None]:
    """A text progress bar on stderr (one line, redrawn)."""
    def update(done: int, what: str) -> None:
        width = 24
        filled = width * done // max(total, 1)
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
                         f"{what:<24}{end}")
        sys.stderr.flush()
    return update


def compare(func_or_funcs: Any, setup: Callable[[int], Any], n_range: Iterable[int], *,
            strategies: Sequence[str] = STRATEGIES, repeat: int = 15,
            equality_check: bool = True, tolerance: float = 0.0,
            namespace: dict[str, Any] | None = None, timer: Any = None,
            orchestrator: Any = None, progress: bool = True) -> Comparison:
    """Time ``func_or_funcs`` under ``strategies`` for each ``n`` of ``n_range``.

    Parameters
    ----------
    func_or_funcs : function or sequence of functions
        Plain Python functions or fox functions; each strategy is built from the source.
    setup : callable
        ``setup(n)`` returns the arguments (a tuple, or one argument) for size ``n``.
    n_range : iterable of int
        The sizes.
    strategies : sequence of str
        From ``numba`` (plain ``@njit``: the baseline when present), ``python``, ``jit``,
        ``aot``, ``auto``, and strategies plugins add (``foxnb.plugins()``), built for the
        numba types of each size's arguments.
    repeat : int
        Rounds of the rotated timing.
    equality_check : bool
        Check first that every strategy returns what the baseline returns (and leaves array
        arguments as it does); a difference raises :class:`ComparisonError`.
    tolerance : float
        Relative difference allowed by the equality check (default 0: exact).
    timer : callable, optional
        ``timer(contenders) -> {name: Samples}`` (default: the house method).
    orchestrator : Orchestrator, optional
        Where each size runs as a task (default: foxnb's).
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    Comparison
    """
    from foxnb.orchestrator import get_orchestrator
    from foxnb.strategies.auto import benchmark_now, strategy_of
    from foxnb.strategies.checks import copy_args, run_once, same_behaviour
    from foxnb.strategies.timing import measure, ratio_spread, spread_of

    funcs = list(func_or_funcs) if isinstance(func_or_funcs, (list, tuple)) else [func_or_funcs]
    sizes = list(n_range)
    if not funcs or not sizes or not strategies:
        raise FoxnbUsageError("foxnb.compare needs at least one function, size and strategy")
    subjects = [_Subject(f, namespace) for f in funcs]
    many = len(subjects) > 1
    built: dict[str, Callable[..., Any]] = {}
    for s in subjects:
        for strategy in strategies:
            built[f"{s.name}:{strategy}" if many else strategy] = s.build(strategy)
    baseline = next((k for k in built if k.endswith("numba")), next(iter(built)))
    orch = orchestrator or get_orchestrator()
    time_them = timer or (lambda contenders: measure(contenders, rounds=repeat))
    rows: list[dict[str, Any]] = []
    show = _progress(len(sizes), "foxnb.compare") if progress else (lambda done, what: None)

    def one(n: int) -> None:
        args = setup(n)
        args = args if isinstance(args, tuple) else (args,)
        for fn in built.values():
            st = strategy_of(fn)
            if st is not None and st.mode == "auto":
                argtypes = tuple(fn.typeof_pyval(a) for a in args)  # type: ignore[attr-defined]
                if argtypes not in st.benchmarks:
                    benchmark_now(fn, args)  # type: ignore[arg-type]
        outcomes = {label: run_once(fn, args) for label, fn in built.items()}
        if equality_check:
            for label, outcome in outcomes.items():
                why = same_behaviour(outcomes[baseline], outcome, tolerance)
                if why:
                    raise ComparisonError(f"foxnb.compare: strategy {label!r} differs from "
                                          f"{baseline!r} at n={n}: {why} (equality_check=False "
                                          "times them anyway)")

        def bound(fn: Callable[..., Any]) -> Callable[[], Any]:
            mine = copy_args(args)
            return lambda: fn(*mine)

        samples = time_them({label: bound(fn) for label, fn in built.items()})
        base = samples[baseline]
        for label in built:
            cpu = spread_of(samples[label].cpu)
            rows.append({"strategy": label, "n": n, "median": cpu.median, "q1": cpu.q1,
                         "q3": cpu.q3, "wall": spread_of(samples[label].wall).median,
                         "speedup": ratio_spread(base.cpu, samples[label].cpu).median})

    for i, n in enumerate(sizes):
        show(i, f"n={n}")
        orch.run(one, n, kind="compare", name=f"compare n={n}")
    show(len(sizes), "done")
    return Comparison(rows, baseline)
