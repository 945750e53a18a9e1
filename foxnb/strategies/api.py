"""``foxnb.switch`` and ``foxnb.explain``: change and show what a fox function runs."""

from __future__ import annotations

import html
import sys
from typing import Any

from foxnb.cache.keys import digest
from foxnb.engines.base import BuildGroup, BuildSpec, EngineContext, JitOptions
from foxnb.engines.jit import ENGINE as JIT
from foxnb.engines.jit import FoxDispatcher
from foxnb.errors import FoxnbUsageError
from foxnb.strategies.auto import MODES, Strategy, Trial, strategy_of, use_strategy

__all__ = ["Explanation", "explain", "switch"]


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise FoxnbUsageError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")


def _namespaces(namespace: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Where a fox function's registry may live: the given namespace, the callers' globals,
    IPython's user namespace."""
    if namespace is not None:
        return [namespace]
    found: list[dict[str, Any]] = []
    frame: Any = sys._getframe(2)
    while frame is not None:
        found.append(frame.f_globals)
        frame = frame.f_back
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:
        found.append(shell.user_ns)
    return found


def _record(obj: Any, namespaces: list[dict[str, Any]]) -> tuple[Any, dict[str, Any]]:
    from foxnb.registry import _SLOT

    for ns in namespaces:
        registry = ns.get(_SLOT)
        for rec in getattr(registry, "records", {}).values():
            if rec.obj is obj:
                return rec, ns
    raise FoxnbUsageError(f"{obj!r} is not a fox function of this namespace "
                          "(pass namespace= to foxnb.switch)")


def _is_aot(obj: Any) -> bool:
    return type(obj).__module__ == "foxnb._native._foxcall" and hasattr(obj, "redirect")


def switch(f: Any, mode: str, *, namespace: dict[str, Any] | None = None) -> Any:
    """Run fox function ``f`` as ``mode`` from its next call on, in place.

    References already held (``g = f``, a dict of kernels) follow: they are the same object.

    Parameters
    ----------
    f : fox function
        A ``%%fox``, ``%%foxjit`` or ``%%foxaot`` function.
    mode : {"auto", "jit", "aot", "python"}
        ``jit``: WaterFox's code; ``aot``: ThunderFox's library (built for each signature
        called, from the function's source); ``python``: the plain function; ``auto``:
        profile, benchmark the variants, run the fastest validated one.
    namespace : dict, optional
        The namespace the function was defined in (needed for ``%%foxaot`` functions when
        it is neither the caller's globals nor IPython's user namespace).

    Returns
    -------
    The same object ``f``.

    Raises
    ------
    FoxnbUsageError
        ``mode`` is unknown, or ``f`` is not a fox function.
    """
    _check_mode(mode)
    if isinstance(f, FoxDispatcher):
        old = strategy_of(f) or Strategy("jit", f.__foxnb_key__)
        use_strategy(f, Strategy(mode, f.__foxnb_key__, tolerance=old.tolerance,
                                 threshold=old.threshold, allow_fastmath=old.allow_fastmath))
        return f
    if _is_aot(f):
        if mode == "aot":
            f.redirect(None)
            return f
        rec, ns = _record(f, _namespaces(namespace))
        f.redirect(_aot_target(rec, ns, mode))
        return f
    raise FoxnbUsageError(f"foxnb.switch takes a %%fox, %%foxjit or %%foxaot function; "
                          f"got {type(f).__name__}")


def _aot_target(rec: Any, ns: dict[str, Any], mode: str) -> Any:
    """The Python or WaterFox version of a ``%%foxaot`` function's record."""
    from foxnb.engines.python import make_function

    options = rec.options
    jit = JitOptions(error_model=options.error_model, fastmath=options.fastmath,
                     boundscheck=options.boundscheck)
    spec = BuildSpec(rec.function, dict(rec.globals), jit, digest(rec.key, "jit"),
                     "switched from aot", defaults=rec.defaults, kwdefaults=rec.kwdefaults,
                     namespace=ns)
    if mode == "python":
        return make_function(spec, ns)
    JIT.prepare_globals(spec.globals)  # AOT callees as numba-callable handles
    context = EngineContext.current()
    built = JIT.build(BuildGroup((spec,), key=spec.key,
                                 cell_functions={rec.name: rec.function}), context)
    target = built.objects[rec.name]
    if isinstance(target, FoxDispatcher) and mode == "auto":
        use_strategy(target, Strategy("auto", target.__foxnb_key__))
    return target


class Explanation:
    """What a fox function runs, what auto tried, the measured ratios and the reasons.

    ``str()`` gives text, ``_repr_html_`` a table (Jupyter shows it).
    """

    def __init__(self, name: str, mode: str, lines: list[str],
                 rows: list[tuple[str, str, Trial]]) -> None:
        self.name = name
        self.mode = mode
        self.lines = lines
        self.rows = rows  # (signature, variant running, trial)

    @property
    def variant(self) -> str:
        """The variant running (per signature when they differ), else the mode."""
        running = list(dict.fromkeys(v for _, v, _ in self.rows if v))
        return "; ".join(running) if running else self.mode

    @property
    def ratios(self) -> dict[str, float]:
        """Median time ratio (candidate / baseline) of every variant that was timed."""
        return {t.name: t.ratio.median for _, _, t in self.rows if t.ratio is not None}

    @property
    def summary(self) -> str:
        """The first line: the function, its mode and what runs."""
        return self.lines[0] if self.lines else f"{self.name}: {self.mode}"

    def __str__(self) -> str:
        out = list(self.lines)
        for sig, _, t in self.rows:
            ratio = (f" time ratio {t.ratio.text()} ({t.metric} time, median [IQR])"
                     if t.ratio is not None else "")
            why = f": {t.reason}" if t.reason else ""
            out.append(f"  ({sig}) {t.name}: {t.outcome}{ratio}{why}")
        return "\n".join(out)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = "".join(f"<div>{html.escape(line)}</div>" for line in self.lines)
        if not self.rows:
            return f"<div class='foxnb-explain'>{head}</div>"
        cells = []
        for sig, _, t in self.rows:
            ratio = f"{t.ratio.median:.3f} [{t.ratio.q1:.3f}-{t.ratio.q3:.3f}]" if t.ratio else ""
            cells.append("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
                sig, t.name, t.outcome, ratio, t.metric if t.ratio else "", t.reason)) + "</tr>")
        table = ("<table><tr><th>signature</th><th>variant</th><th>outcome</th>"
                 "<th>time ratio (median [IQR])</th><th>clock</th><th>reason</th></tr>"
                 + "".join(cells) + "</table>")
        return f"<div class='foxnb-explain'>{head}{table}</div>"


def explain(f: Any) -> Explanation:
    """Which variant ``f`` runs per signature, what was tried, the measured time ratios
    (candidate / baseline, median and interquartile range over rounds) and why each rejected
    variant was rejected — or, before the threshold, that nothing was tried yet and why.

    Raises
    ------
    FoxnbUsageError
        ``f`` is not a fox function.
    """
    if _is_aot(f):
        target = f.redirected
        name = f.__name__
        if target is None:
            return Explanation(name, "aot", [f"{name}: aot — ThunderFox's library ({f.signature})"],
                               [])
        mode = "python" if not isinstance(target, FoxDispatcher) else (
            "auto" if strategy_of(target) is not None and strategy_of(target).mode == "auto"  # type: ignore[union-attr]
            else "jit")
        inner = explain(target) if isinstance(target, FoxDispatcher) else None
        lines = [f"{name}: {mode} — the %%foxaot object forwards its calls to the "
                 f"{'plain Python function' if inner is None else 'WaterFox version'}"]
        return Explanation(name, mode, lines + (inner.lines[1:] if inner else []),
                           inner.rows if inner else [])
    if not isinstance(f, FoxDispatcher):
        raise FoxnbUsageError(f"foxnb.explain takes a fox function; got {type(f).__name__}")
    name = f._fox_function.name
    st = strategy_of(f)
    if st is None:
        sigs = ", ".join(f"({_fmt(a)})" for a in f.overloads) or "none compiled yet"
        return Explanation(name, "jit", [
            f"{name}: jit — WaterFox's code per signature ({sigs}); no variants are tried "
            "(%%fox or foxnb.switch(f, 'auto') benchmarks them)"], [])
    lines = [f"{name}: strategy {st.mode}"]
    rows: list[tuple[str, str, Trial]] = []
    if st.mode == "python":
        lines.append("  every call runs the plain Python function")
    elif st.mode == "aot":
        for args in f.overloads:
            how = "ThunderFox's library" if st.running.get(args) == "aot" else "WaterFox's code"
            lines.append(f"  ({_fmt(args)}): {how}")
        for args, why in st.aot_errors.items():
            lines.append(f"  ({_fmt(args)}): no AOT build ({why})")
    elif st.mode == "jit":
        lines.append("  WaterFox's code for every signature; no variants are tried")
    else:
        lines.append(f"  a signature is benchmarked after {st.threshold} calls "
                     f"(tolerance {st.tolerance:g}, full fastmath "
                     f"{'allowed' if st.allow_fastmath else 'not allowed'})")
        signatures = list(dict.fromkeys([*st.profiles, *f.overloads]))
        if not signatures:
            lines.append("  nothing tried yet: no call so far")
        for args in signatures:
            sig = _fmt(args)
            prof = st.profiles.get(args)
            bench = st.benchmarks.get(args)
            running = st.running.get(args, "baseline (WaterFox JIT)")
            shapes = f", arguments {prof.shapes}" if prof is not None and prof.shapes else ""
            if bench is None:
                calls = prof.calls if prof is not None else 0
                lines.append(f"  ({sig}): runs the baseline; profiled {calls} of {st.threshold} "
                             f"calls{shapes}: nothing tried yet (the benchmark starts at "
                             f"{st.threshold} calls)")
                continue
            note = f" — {bench.note}" if bench.note else ""
            lines.append(f"  ({sig}): runs {running}; benchmark {bench.state}{shapes}{note}")
            rows += [(sig, running, t) for t in bench.trials]
    return Explanation(name, st.mode, lines, rows)


def _fmt(argtypes: tuple[Any, ...]) -> str:
    return ", ".join(str(a) for a in argtypes)
