"""Let numba-compiled (``%%foxjit``) code call ``%%foxaot`` functions natively.

An AOT library's bitcode (``<name>.bc``, saved by ``build_library`` before internalising)
still defines each exported function under its numba-ABI symbol. Per library (by the bitcode's
sha256, checked against the metadata) this module loads that bitcode ONCE into a numba
``CodeLibrary`` of numba's own JIT codegen: the kept symbols are renamed after the bitcode's
digest, everything else is internalised and unused code (the C wrappers, which need foxnb's
runtime) is dropped; ``NRT_*`` symbols resolve to numba's runtime, so arrays the AOT code
allocates are ordinary numba arrays. :func:`numba_callable` returns a numba intrinsic whose
code generation links that library into the caller (numba's usual way for a callee: its
functions become ``linkonce_odr`` copies, so any number of callers coexist and LLVM may inline
them) and calls the symbol with numba's calling convention, so exceptions raised by the AOT
code (``ZeroDivisionError`` under ``--error-model python``, ``IndexError`` under
``--boundscheck``) propagate as they would between two numba functions.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llvmlite.binding as llvm

from foxnb.engines._aot import link
from foxnb.engines._aot.lower import (
    cgutils,
    errors,
    from_value_spec,
    global_compiler_lock,
    nbtypes,
    numba,
)
from foxnb.engines._aot.metadata import read_metadata
from foxnb.engines._aot.spec import ExportedFunction
from foxnb.errors import FoxnbCacheError, FoxnbCompileError

_registry: Any = importlib.import_module("numba.core.registry")
_rtsys: Any = importlib.import_module("numba.core.runtime").rtsys
_Conversion: Any = importlib.import_module("numba.core.typeconv").Conversion


@dataclass(frozen=True)
class _Bitcode:
    """Where one library's bitcode is, the sha256 its metadata promises, its numba-ABI symbols."""

    name: str
    path: Path
    digest: str
    symbols: tuple[str, ...]

    def renamed(self, symbol: str) -> str:
        # after the content: two libraries that differ never share a symbol in numba's JIT
        return f"_foxbridge{self.digest[:16]}{symbol}"


#: One finalised numba CodeLibrary per bitcode content (sha256), for the whole process.
_LIBRARIES: dict[str, Any] = {}


def _read(bitcode: _Bitcode) -> bytes:
    try:
        data = bitcode.path.read_bytes()
    except OSError as exc:
        raise FoxnbCacheError(f"cannot read AOT bitcode {bitcode.path}: {exc}") from None
    if hashlib.sha256(data).hexdigest() != bitcode.digest:
        raise FoxnbCacheError(f"checksum mismatch for {bitcode.path}: rebuild library "
                              f"{bitcode.name!r} (re-run its %%foxaot cell with -f)")
    return data


def _drop_unused(module: Any) -> None:
    # Global DCE only: the C-ABI wrappers (now internal) go, numba optimises the rest.
    tm = link.target_machine(0)
    pb = llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(speed_level=0))
    mpm = llvm.create_new_module_pass_manager()
    mpm.add_global_dead_code_eliminate_pass()
    mpm.run(module, pb)


def code_library(bitcode: _Bitcode) -> Any:
    """The finalised numba CodeLibrary holding ``bitcode``'s functions (built on first use).

    Raises
    ------
    FoxnbCacheError
        The bitcode is missing or does not match its checksum.
    FoxnbCompileError
        The code needs a symbol numba's JIT cannot provide.
    """
    with global_compiler_lock:  # numba's JIT and LLVM's global context are not thread-safe
        found = _LIBRARIES.get(bitcode.digest)
        if found is not None:
            return found
        module = llvm.parse_bitcode(_read(bitcode))
        for symbol in bitcode.symbols:
            module.get_function(symbol).name = bitcode.renamed(symbol)
        link.internalize(module, keep=map(bitcode.renamed, bitcode.symbols))
        _drop_unused(module)
        context = _registry.cpu_target.target_context
        _rtsys.initialize(context)  # numba's NRT_* functions, as the JIT resolves them
        missing = sorted(s for s in link.undefined_symbols(module)
                         if not llvm.address_of_symbol(s))
        if missing:
            reason = f"needs symbols numba's JIT does not provide: {', '.join(missing[:5])}"
            raise FoxnbCompileError(f"AOT library {bitcode.name!r} {reason}",
                                    reason=reason)
        library = context.codegen().create_library(f"foxaot.{bitcode.name}")
        library.add_llvm_module(module)
        library.finalize()
        _LIBRARIES[bitcode.digest] = library
        return library


def _accepts(typingctx: Any, got: Any, want: Any) -> bool:
    """Whether numba may pass a value of type ``got`` where the AOT code takes ``want``:
    an array of the same dtype and rank whose layout and writeability the code accepts, a
    scalar without a lossy conversion (numba casts it at the call)."""
    if isinstance(want, nbtypes.Array):
        return (isinstance(got, nbtypes.Array) and (got.dtype, got.ndim) == (want.dtype, want.ndim)
                and want.layout in ("A", got.layout) and (got.mutable or not want.mutable))
    conversion = typingctx.can_convert(got, want)
    return conversion is not None and conversion <= _Conversion.safe


def _array_hint(want: Any) -> str:
    kind = ("writeable " if want.mutable else "") + ("C-contiguous " if want.layout == "C" else "")
    copy = "np.ascontiguousarray(a) or a copy" if want.layout == "C" else "a copy"
    return f" (pass a {kind}array of {want.dtype}, {want.ndim}d, e.g. {copy})"


def _intrinsic(fn: ExportedFunction, bitcode: _Bitcode) -> Any:
    intrinsic = importlib.import_module("numba.extending").intrinsic
    sig = numba.core.typing.signature(
        from_value_spec(fn.result), *(from_value_spec(a) for a in fn.args))
    symbol = bitcode.renamed(fn.abi_symbol)
    context_param = "typingctx"
    while context_param in fn.arg_names:  # numba passes its typing context first
        context_param += "_"
    params = [inspect.Parameter(context_param, inspect.Parameter.POSITIONAL_ONLY)] + [
        inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in fn.arg_names]
    pysig = inspect.Signature(params)
    origin = f"{fn.name} (from %%foxaot library {bitcode.name!r}) takes {fn.pretty()}"

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        context.active_code_library.add_linking_library(code_library(bitcode))
        callee = cgutils.get_or_insert_function(
            builder.module, context.call_conv.get_function_type(sig.return_type, sig.args),
            symbol)
        status, result = context.call_conv.call_function(
            builder, callee, sig.return_type, sig.args, args)
        with cgutils.if_unlikely(builder, status.is_error):  # the AOT code raised
            context.call_conv.return_status_propagate(builder, status)
        return result

    def typer(typingctx: Any, /, *args: Any, **kws: Any) -> tuple[Any, Callable[..., Any]]:
        try:
            actual = pysig.bind(typingctx, *args, **kws).arguments
        except TypeError as exc:
            raise errors.TypingError(f"{origin}: {exc}") from None
        for i, name in enumerate(fn.arg_names):
            got, want = actual[name], sig.args[i]
            if not _accepts(typingctx, got, want):
                fix = _array_hint(want) if isinstance(want, nbtypes.Array) else ""
                raise errors.TypingError(
                    f"{origin}; argument {i + 1} '{name}' is {got}{fix}")
        try:  # a missing or damaged library fails while typing: the caller can fall back
            code_library(bitcode)
        except (FoxnbCacheError, FoxnbCompileError) as exc:
            raise errors.TypingError(f"{origin}: {exc}") from None
        return sig, codegen

    typer.__name__ = typer.__qualname__ = fn.name
    typer.__signature__ = pysig  # type: ignore[attr-defined]
    callable_ = intrinsic(typer)
    # foxnb's cache key for code that reads this global: the code numba links, by content
    callable_.__foxnb_key__ = f"aot-bridge:{bitcode.digest}:{fn.abi_symbol}"
    return callable_


def numba_callable(library_dir: Path | str, library_name: str, function_name: str) -> Any:
    """An object numba calls from nopython code that runs an AOT function's compiled code.

    Put it in a numba function's globals under the function's name: the caller then calls
    the AOT code directly (LLVM may inline it), with numba's argument checks and exception
    propagation, and no Python object in between.

    Parameters
    ----------
    library_dir : Path or str
        Artifact directory of the library (``<library_name>.json`` and ``.bc`` are read).
    library_name : str
        Library name.
    function_name : str
        Name of an exported function of the library.

    Returns
    -------
    numba intrinsic
        Typed like the function's signature: arguments must match without a lossy
        conversion (arrays: the same dtype and dimensions, C-contiguous, writeable),
        otherwise numba raises a ``TypingError`` naming the signature.

    Raises
    ------
    FoxnbCacheError
        The metadata is missing or unreadable, or lists no bitcode.
    ValueError
        The library exports no function ``function_name``.
    """
    library_dir = Path(library_dir)
    meta = read_metadata(library_dir, library_name, verify=False)
    functions = {f.name: f for f in map(ExportedFunction.from_json, meta["functions"])}
    digest = meta.get("files", {}).get(f"{library_name}.bc")
    if digest is None:
        raise FoxnbCacheError(f"AOT library {library_name!r} in {library_dir} has no bitcode; "
                              "rebuild it (re-run its %%foxaot cell with -f)")
    if function_name not in functions:
        raise ValueError(f"AOT library {library_name!r} exports no function {function_name!r} "
                       f"(it exports {', '.join(sorted(functions)) or 'nothing'})")
    bitcode = _Bitcode(
        name=library_name, path=library_dir / f"{library_name}.bc", digest=str(digest),
        symbols=tuple(sorted({f.abi_symbol for f in functions.values()})))
    return _intrinsic(functions[function_name], bitcode)


__all__ = ["code_library", "numba_callable"]
