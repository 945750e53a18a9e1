"""``foxnb.inspect``: the types, LLVM IR or assembly of a fox function, whichever engine built it.

WaterFox (``%%foxjit``, ``%%fox``) functions show what numba compiled for each signature
called so far; ThunderFox (``%%foxaot``) functions show the library's code, optimised as the
``.so`` was (from the bitcode the build keeps). Both say which loops LLVM vectorised.
"""

from __future__ import annotations

import html
import io
import re
from typing import Any, Literal

from foxnb.errors import FoxnbUsageError

__all__ = ["Inspection", "inspect"]

What = Literal["types", "llvm", "asm"]
_WHAT = ("types", "llvm", "asm")
# A vector operation in LLVM IR (`<4 x double>`) or a vector register in x86 assembly.
_VECTOR_IR = re.compile(r"<\d+ x (?:double|float|i\d+)>")
_DEFINE = re.compile(r"^define [^@]*@(\"[^\"]+\"|[\w.$]+)\(.*?^}", re.M | re.S)


class Inspection:
    """What :func:`inspect` found: the text per signature and whether loops were vectorised.

    Attributes
    ----------
    name : str
        The function's name.
    engine : str
        ``"jit"`` or ``"aot"``.
    what : str
        ``"types"``, ``"llvm"`` or ``"asm"``.
    texts : dict
        Signature -> text.
    vectorized : dict
        Signature -> whether the function's optimised code uses vector instructions.
    """

    def __init__(self, name: str, engine: str, what: str, texts: dict[str, str],
                 vectorized: dict[str, bool]) -> None:
        self.name = name
        self.engine = engine
        self.what = what
        self.texts = texts
        self.vectorized = vectorized

    def summary(self) -> str:
        """One line per signature: vectorised or not."""
        return "\n".join(f"{self.name}({sig}) [{self.engine}]: loops "
                         f"{'vectorised' if v else 'not vectorised'}"
                         for sig, v in self.vectorized.items())

    def __str__(self) -> str:
        parts = [self.summary()]
        for sig, text in self.texts.items():
            parts.append(f"--- {self.what} of {self.name}({sig}) ---\n{text.rstrip()}")
        return "\n".join(parts)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        body = "".join(
            f"<details><summary>{html.escape(self.what)} of {html.escape(self.name)}"
            f"({html.escape(sig)})</summary><pre>{html.escape(text)}</pre></details>"
            for sig, text in self.texts.items())
        return f"<div class='foxnb-inspect'><pre>{html.escape(self.summary())}</pre>{body}</div>"


def inspect(f: Any, what: What = "llvm") -> Inspection:
    """Show what a fox function compiled to, for JIT and AOT functions alike.

    Parameters
    ----------
    f : fox function
        A ``%%foxjit``, ``%%fox`` or ``%%foxaot`` function (or one switched between engines).
    what : {"types", "llvm", "asm"}
        numba's typed view of the source, the optimised LLVM IR, or the machine assembly.

    Returns
    -------
    Inspection
        The text per signature (``str()`` shows it all; Jupyter shows foldable sections) and
        ``vectorized``: whether LLVM vectorised the function's loops, per signature.

    Raises
    ------
    FoxnbUsageError
        ``f`` is not a fox function, ``what`` is unknown, or a WaterFox function has not
        been compiled yet (it compiles on its first call, per argument types).

    Examples
    --------
    >>> foxnb.inspect(pairsum, "asm").vectorized  # doctest: +SKIP
    {'array(float64, 1d, C), int64': True}
    """
    if what not in _WHAT:
        raise FoxnbUsageError(f"foxnb.inspect: what={what!r}; choose one of {', '.join(_WHAT)}")
    target = getattr(f, "redirected", None)
    if target is not None:  # a %%foxaot function switched to another engine: what runs
        return inspect(target, what)
    from foxnb.engines.aot import library_of

    if library_of(f) is not None:
        return _inspect_aot(f, what)
    if _is_dispatcher(f):
        return _inspect_jit(f, what)
    name = getattr(f, "__name__", type(f).__name__)
    raise FoxnbUsageError(f"foxnb.inspect: {name} is not a fox function (define it in a "
                          "%%foxjit, %%fox or %%foxaot cell); plain Python has no compiled code")


def _is_dispatcher(f: Any) -> bool:
    import sys

    if "numba" not in sys.modules:
        return False
    from numba.core.dispatcher import Dispatcher

    return isinstance(f, Dispatcher)


def _inspect_jit(f: Any, what: str) -> Inspection:
    name = f.py_func.__name__
    signatures = list(f.overloads)
    if not signatures:
        raise FoxnbUsageError(
            f"foxnb.inspect: {name} has not been compiled yet: WaterFox compiles it on its "
            f"first call, per argument types — call {name}(...) once, then inspect it")
    texts, vectorized = {}, {}
    for sig in signatures:
        label = ", ".join(str(t) for t in sig)
        ir = f.inspect_llvm(sig)
        asm = f.inspect_asm(sig)
        if what == "types":
            buf = io.StringIO()
            f.inspect_types(file=buf, signature=sig)
            texts[label] = buf.getvalue()
        else:
            texts[label] = ir if what == "llvm" else asm
        vectorized[label] = _vectorized_ir(_own_functions(ir, name))
    return Inspection(name, "jit", what, texts, vectorized)


def _own_functions(ir: str, name: str) -> str:
    """The IR of the functions compiled from ``name`` (numba's mangled names contain it),
    without the wrappers numba adds around them."""
    own = [m.group(0) for m in _DEFINE.finditer(ir)
           if name in m.group(1) and "cpython" not in m.group(1) and "cfunc" not in m.group(1)]
    return "\n".join(own) or ir


def _vectorized_ir(ir: str) -> bool:
    return bool(_VECTOR_IR.search(ir))


def _inspect_aot(f: Any, what: str) -> Inspection:
    from foxnb.engines._aot import link
    from foxnb.engines.aot import _bound

    entry = _bound(f)
    assert entry is not None
    lib, export = entry.library, entry.export
    label = export.pretty().split("(", 1)[1].rsplit(")", 1)[0]
    module, level = _optimised_module(lib)
    own = _function_ir(str(module), export.c_symbol)
    if what == "types":
        args = ", ".join(f"{a}: {v.describe()}"
                         for a, v in zip(export.arg_names, export.args, strict=True))
        text = (f"{export.name}({args}) -> {export.result.describe()}\n"
                f"C entry point: {export.c_symbol} (see {lib.name}.h in {lib.directory})")
    elif what == "llvm":
        text = own
    else:
        text = _function_asm(link.target_machine(level).emit_assembly(module), export.c_symbol)
    return Inspection(export.name, "aot", what, {label: text}, {label: _vectorized_ir(own)})


def _optimised_module(lib: Any) -> tuple[Any, int]:
    """The library's code as its ``.so`` was built: the kept bitcode (checksums verified),
    its exports kept, optimised at the library's level."""
    import llvmlite.binding as llvm

    from foxnb.engines._aot import link
    from foxnb.engines._aot.metadata import read_metadata

    meta = read_metadata(lib.directory, lib.name, verify=True)
    level = int(meta["opt_level"])
    module = llvm.parse_bitcode((lib.directory / f"{lib.name}.bc").read_bytes())
    link.internalize(module, keep={s for fn in lib.exports
                                   for s in (fn.c_symbol, fn.packed_symbol)})
    link.optimise(module, level)
    return module, level


def _function_ir(module_ir: str, symbol: str) -> str:
    for m in _DEFINE.finditer(module_ir):
        if m.group(1).strip('"') == symbol:
            return m.group(0)
    return module_ir


def _function_asm(asm: str, symbol: str) -> str:
    start = asm.find(f"\n{symbol}:")
    if start < 0:
        return asm
    end = asm.find(".Lfunc_end", start)
    return asm[start + 1:end if end > 0 else len(asm)]
