"""IPython integration: magics register here, cell hooks keep fox functions in sync.

``%load_ext foxnb`` imports neither the engines nor the cache: the magics are declared
lazily (IPython imports ``foxnb.magics.jit``/``.aot`` on a magic's first use) and the
post-cell hook has nothing to check until a fox function exists.
"""

from __future__ import annotations

import sys
import types
import warnings
from collections.abc import Callable
from typing import Any

from foxnb.errors import FoxnbWarning
from foxnb.logs import CellCorrelation, cell_correlation_id

__all__ = ["argument", "cell_correlation_id", "lazy_magic_arguments", "load", "magic_fastmath",
           "unload"]

_original_formatwarning = warnings.formatwarning


def _formatwarning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                   line: str | None = None) -> str:
    # One line for our warnings: the message already names function and cell line.
    if issubclass(category, FoxnbWarning):
        return f"FoxnbWarning: {message}\n"
    return _original_formatwarning(message, category, filename, lineno, line)


#: cell magic -> "module:MagicsClass" providing it
_MAGICS = {"foxjit": "foxnb.magics.jit:FoxMagics", "foxaot": "foxnb.magics.aot:AotMagics",
           "fox": "foxnb.magics.fox:StrategyMagics"}
#: line magic -> "module:MagicsClass" providing it
_LINE_MAGICS = {"foxserve": "foxnb.magics.ops:OpsMagics", "foxhealth": "foxnb.magics.ops:OpsMagics",
                "foxpanel": "foxnb.magics.panel:PanelMagics",
                "foxmode": "foxnb.magics.fox:StrategyMagics",
                "foxcompare": "foxnb.magics.fox:StrategyMagics"}


class argument:  # a decorator: lower case, like IPython's
    """IPython's ``@argument`` for :class:`lazy_magic_arguments`: records ``add_argument``'s
    arguments on the magic function as IPython's does (``func.decorators``), without
    importing ``IPython.core.magic_arguments`` (and argparse) before the parser is built."""

    def __init__(self, *args: Any, **kwds: Any) -> None:
        self.args, self.kwds = args, kwds

    def __call__(self, func: Any) -> Any:
        if not getattr(func, "has_arguments", False):
            func.has_arguments = True
            func.decorators = []
        func.decorators.append(self)
        return func

    def add_to_parser(self, parser: Any, group: Any) -> None:
        """What IPython's ``construct_parser`` calls for each decorator."""
        (parser if group is None else group).add_argument(*self.args, **self.kwds)


class lazy_magic_arguments:  # a decorator: lower case, like IPython's
    # IPython's ``@magic_arguments()`` builds the argparse parser and formats its help text
    # when the class is created: ~4 ms of a kernel's first cell (argparse's formatters,
    # gettext, locale). In its place above the ``@argument`` lines, this decorator builds
    # both on first need: the help (``%%magic?`` reads ``__doc__``), ``.parser``, or a line
    # that :meth:`parse` leaves to argparse. Parser and help are IPython's, unchanged.

    def __init__(self, func: Callable[..., Any]) -> None:
        self._func = func
        self.__name__ = func.__name__
        self.__qualname__ = func.__qualname__
        self.__module__ = func.__module__
        self.__wrapped__ = func
        self._options: dict[str, tuple[str, dict[str, Any]]] | None = None

    def _built(self) -> Any:
        func = self._func
        if getattr(func, "parser", None) is None:
            from IPython.core.magic_arguments import magic_arguments

            magic_arguments()(func)  # sets func.parser and func.__doc__ (the full help)
        return func

    @property
    def parser(self) -> Any:
        """The magic's argparse parser (built on first use)."""
        return self._built().parser

    def __getattribute__(self, name: str) -> Any:
        # __doc__ cannot be a property next to a class docstring: served here instead.
        if name == "__doc__":
            return object.__getattribute__(self, "_built")().__doc__
        return object.__getattribute__(self, name)

    def __get__(self, obj: Any, cls: type | None = None) -> Any:
        return self if obj is None else types.MethodType(self, obj)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._func(*args, **kwargs)

    def parse(self, line: str) -> Any:
        """Parse the magic's line as ``parse_argstring`` does (same Namespace, same errors).

        Lines made only of exact option strings and values that do not start with ``-``
        are read without argparse; anything else (abbreviations, ``--opt=value``, ``-O3``,
        a bad value, an unknown option, help) goes to the argparse parser.
        """
        from IPython.utils.process import arg_split

        try:
            found = self._fast(arg_split(line, strict=True))
        except ValueError:
            found = None  # unbalanced quotes: argparse raises the error
        return self.parser.parse_argstring(line) if found is None else found

    def _specs(self) -> dict[str, tuple[str, dict[str, Any]]]:
        # option string -> (dest, add_argument keywords), from the @argument decorators
        if self._options is None:
            options: dict[str, tuple[str, dict[str, Any]]] = {}
            # in source order (the decorators ran bottom-up): argparse's Namespace order
            for deco in reversed(getattr(self._func, "decorators", [])):
                names: tuple[str, ...] = deco.args
                kwds: dict[str, Any] = deco.kwds
                if not names or not all(n.startswith("-") for n in names):
                    continue  # a positional argument: lines of such magics go to argparse
                longs = [n for n in names if n.startswith("--")]
                dest = kwds.get("dest") or (longs or names)[0].lstrip("-").replace("-", "_")
                for n in names:
                    options[n] = (dest, kwds)
            self._options = options
        return self._options

    def _fast(self, tokens: list[str]) -> Any:
        import argparse

        specs = self._specs()
        if len({dest for dest, _ in specs.values()}) != len(
                {id(kwds) for _, kwds in specs.values()}):
            return None  # two arguments share a dest: argparse decides
        values: dict[str, Any] = {}
        for dest, kwds in specs.values():
            default = kwds.get("default")
            if isinstance(default, str) or kwds.get("action") not in (
                    None, "store", "store_true", "append"):
                return None  # argparse converts string defaults; other actions are rare
            if kwds.get("action") == "store_true" and "default" not in kwds:
                default = False
            values[dest] = list(default) if isinstance(default, list) else default
        i = 0
        while i < len(tokens):
            spec = specs.get(tokens[i])
            if spec is None:
                return None
            dest, kwds = spec
            action, nargs = kwds.get("action"), kwds.get("nargs")
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if action == "store_true":
                if nargs is not None:
                    return None
                values[dest], i = True, i + 1
                continue
            if nargs == "?" and (nxt is None or nxt in specs):
                values[dest], i = kwds.get("const"), i + 1
                continue
            if nargs not in (None, "?") or nxt is None or nxt.startswith("-"):
                return None
            try:
                value = kwds["type"](nxt) if kwds.get("type") is not None else nxt
            except (TypeError, ValueError):
                return None
            if kwds.get("choices") is not None and value not in kwds["choices"]:
                return None
            if action == "append":
                values[dest] = [*(values[dest] or []), value]
            else:
                values[dest] = value
            i += 2
        return argparse.Namespace(**values)


def magic_fastmath(magic: str, value: Any) -> bool | frozenset[str]:
    """The ``--fastmath`` flags of a magic line, or a ``UsageError`` naming the allowed ones."""
    from IPython.core.error import UsageError

    from foxnb.engines.base import fastmath_flags
    from foxnb.errors import FoxnbUsageError

    try:
        return fastmath_flags(value)
    except FoxnbUsageError as exc:
        raise UsageError(f"{magic}: {exc}") from None


def _refresh(shell: Any) -> None:
    # Registries live in foxnb.registry: not imported yet means no fox function exists.
    registry = sys.modules.get("foxnb.registry")
    if registry is None:
        return
    try:
        registry.registry_for(shell.user_ns).refresh(shell.user_ns)
    except Exception as exc:  # a hook must never break the user's next cell
        warnings.warn(f"foxnb could not check fox functions for changed globals: "
                      f"{type(exc).__name__}: {exc}", FoxnbWarning, stacklevel=1)


def _load_plugins() -> None:
    # Once, at the first cell: a plugin's failure is a FoxnbWarning, never the cell's error.
    from foxnb import plugin

    if not plugin.loaded():
        plugin.load_plugins()


def _reload_configuration() -> None:
    # Files are polled only once settings were read (a cell that used foxnb did).
    configuration = sys.modules.get("foxnb.configuration")
    if configuration is not None:
        configuration.reload()


def _hooks(shell: Any) -> tuple[Any, Any]:
    cell = CellCorrelation(shell)  # the cell's correlation id: set before it, reset after

    def pre_run_cell(info: Any = None) -> None:
        cell.begin()
        _load_plugins()

    def post_run_cell(result: Any = None) -> None:
        try:
            _refresh(shell)
            _reload_configuration()
        finally:
            cell.end()

    return pre_run_cell, post_run_cell


def load(shell: Any) -> None:
    """Register the magics and hooks on ``shell`` (idempotent)."""
    manager = shell.magics_manager
    if hasattr(manager, "load_lazy"):  # IPython >= 9.x: "module:Class" lazy declarations
        for name, spec in _MAGICS.items():
            manager.register_lazy(name, spec, "cell")
        for name, spec in _LINE_MAGICS.items():
            manager.register_lazy(name, spec, "line")
    else:
        import importlib

        for spec in dict.fromkeys([*_MAGICS.values(), *_LINE_MAGICS.values()]):
            module, _, cls = spec.partition(":")
            shell.register_magics(getattr(importlib.import_module(module), cls))
    from foxnb.magics.settings import FoxMagics

    if not any(isinstance(c, FoxMagics) for c in shell.configurables):
        shell.register_magics(FoxMagics)  # %config FoxMagics.<knob> before any foxnb cell
    if getattr(shell, "_foxnb_hooks", None) is None:
        pre, post = _hooks(shell)
        shell.events.register("pre_run_cell", pre)
        shell.events.register("post_run_cell", post)
        shell._foxnb_hooks = (pre, post)
    warnings.formatwarning = _formatwarning


def unload(shell: Any) -> None:
    """Unregister the hooks added by :func:`load` and close open panels (their threads end)."""
    widgets = sys.modules.get("foxnb.widgets.panel")  # not imported: no panel to close
    if widgets is not None:
        widgets.close_all()
    hooks = getattr(shell, "_foxnb_hooks", None)
    if hooks is not None:
        shell.events.unregister("pre_run_cell", hooks[0])
        shell.events.unregister("post_run_cell", hooks[1])
        shell._foxnb_hooks = None
    warnings.formatwarning = _original_formatwarning
