"""numba front end: type and lower each function for its explicit signature, return LLVM IR.

numba's optimiser runs at level 0 here, through a private codegen (we optimise the linked
module ourselves at the requested level), with no CPython or cfunc wrapper. Functions are
rebuilt against a private copy of their globals in which every function of the library is a
numba dispatcher and every function of a linked earlier library is a typed stub that calls
its (renamed) native symbol.
"""

from __future__ import annotations

import functools
import importlib
import re
import types as pytypes
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from foxnb.engines._aot.artifact import AotFunctionSpec
from foxnb.engines._aot.spec import MAX_NDIM, SCALARS, SIG_FORM, ExportedFunction, ValueSpec
from foxnb.engines.messages import first_reason
from foxnb.errors import FoxnbCompileError

# numba's partial annotations do not cover the internals used here: treat them as Any.
numba: Any = importlib.import_module("numba")
errors: Any = importlib.import_module("numba.core.errors")
sigutils: Any = importlib.import_module("numba.core.sigutils")
nbtypes: Any = importlib.import_module("numba.core.types")
cgutils: Any = importlib.import_module("numba.core.cgutils")
_registry: Any = importlib.import_module("numba.core.registry")
_JITCPUCodegen: Any = importlib.import_module("numba.core.codegen").JITCPUCodegen
_CPUTarget: Any = _registry.CPUTarget
_CPUDispatcher: Any = _registry.CPUDispatcher
_cpu_target: Any = _registry.cpu_target
global_compiler_lock: Any = importlib.import_module("numba.core.compiler_lock").global_compiler_lock

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class LoweredFunction:
    """One exported function after numba: its typed signature and its LLVM IR module text."""

    spec: AotFunctionSpec
    arg_names: tuple[str, ...]
    signature: Any  # numba.core.typing.Signature
    abi_symbol: str
    ir: str


def parse_signature(name: str, text: str) -> Any:
    """Parse a numba signature string such as ``"float64(float64[::1], int64)"``.

    Returns a ``numba.core.typing.Signature``; its return type is ``None`` when only the
    argument tuple is given. Raises ``ValueError`` naming the expected ``--sig`` form.
    """
    try:
        args, ret = sigutils.normalize_signature(text)
    except Exception as exc:  # numba raises TypeError, NameError, SyntaxError, ...
        raise ValueError(
            f"bad signature {text!r} for {name!r} ({type(exc).__name__}: {exc}); "
            f"expected numba's form, e.g. {SIG_FORM}"
        ) from None
    for t, is_result in (*((a, False) for a in args), *([(ret, True)] if ret is not None else [])):
        try:
            to_value_spec(t, name=name, tuple_items=is_result)
        except TypeError as exc:
            raise ValueError(str(exc)) from None
    for t in args:
        if isinstance(t, nbtypes.Array) and t.layout == "F":
            any_layout = f"{t.dtype}[{', '.join([':'] * t.ndim)}]"
            raise ValueError(
                f"argument type {t} of {name!r}: %%foxaot passes C-contiguous arrays "
                f"({t.dtype}[..., ::1]) or arrays of any layout ({any_layout}), not "
                f"Fortran-ordered ones: write {any_layout}"
            )
    return numba.core.typing.signature(ret, *args)


def to_value_spec(t: Any, *, name: str, tuple_items: bool = True) -> ValueSpec:
    """Map a numba type onto the C ABI, raising ``TypeError`` for unsupported types."""
    if t is nbtypes.none:
        return ValueSpec("none")
    if isinstance(t, nbtypes.Array) and 0 < t.ndim <= MAX_NDIM and str(t.dtype) in SCALARS:
        return ValueSpec(str(t.dtype), t.ndim, "C" if t.layout == "C" else "A", not t.mutable)
    if str(t) in SCALARS:
        return ValueSpec(str(t))
    if isinstance(t, nbtypes.BaseTuple) and len(t) > 0 and tuple_items:
        items = tuple(to_value_spec(i, name=name, tuple_items=False) for i in t)
        if all(i.dtype != "none" for i in items):
            return ValueSpec("tuple", items=items)
    raise TypeError(
        f"type {t} in the signature of {name!r} is not supported by %%foxaot: use scalars "
        f"({', '.join(SCALARS)}) or arrays of them (a result may also be a tuple of them), "
        f"e.g. {SIG_FORM}"
    )


def from_value_spec(v: ValueSpec) -> Any:
    """The numba type for a C-ABI value."""
    if v.dtype == "none":
        return nbtypes.none
    if v.is_tuple:
        return nbtypes.Tuple([from_value_spec(i) for i in v.items])
    scalar = nbtypes.boolean if v.dtype == "bool" else numba.from_dtype(np.dtype(v.dtype))
    return nbtypes.Array(scalar, v.ndim, v.layout, readonly=v.readonly) if v.ndim else scalar


def linked_stub(fn: ExportedFunction) -> Callable[..., Any]:
    """A numba intrinsic typed like ``fn`` whose body calls ``fn.abi_symbol`` (linked later)."""
    intrinsic = importlib.import_module("numba.extending").intrinsic

    sig = numba.core.typing.signature(
        from_value_spec(fn.result), *(from_value_spec(a) for a in fn.args)
    )
    _placeholder_symbol(fn.abi_symbol)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        fnty = context.call_conv.get_function_type(sig.return_type, sig.args)
        callee = cgutils.get_or_insert_function(builder.module, fnty, fn.abi_symbol)
        status, res = context.call_conv.call_function(
            builder, callee, sig.return_type, sig.args, args
        )
        with cgutils.if_unlikely(builder, status.is_error):
            context.call_conv.return_status_propagate(builder, status)
        return res

    def check(typingctx: Any, *actual: Any) -> Any:
        # The stub stands for compiled code: refuse what numba itself would not pass to it
        # (another rank or dtype, a strided or read-only array, a lossy number conversion).
        from numba.core.typeconv import Conversion

        for i, (got, want) in enumerate(zip(actual, sig.args, strict=True)):
            if isinstance(want, nbtypes.Array):
                ok = (isinstance(got, nbtypes.Array) and got.dtype == want.dtype
                      and got.ndim == want.ndim and want.layout in ("A", got.layout)
                      and (got.mutable or not want.mutable))
            else:
                conv = typingctx.can_convert(got, want)
                ok = conv is not None and conv <= Conversion.safe
            if not ok:
                raise errors.TypingError(
                    f"{fn.name} (from an earlier %%foxaot cell) takes {fn.pretty()}; argument "
                    f"{i + 1} '{fn.arg_names[i]}' is {got}"
                    + (f" (pass a {'' if not want.mutable else 'writeable '}"
                       f"{'C-contiguous ' if want.layout == 'C' else ''}array, e.g. a copy)"
                       if isinstance(want, nbtypes.Array) else ""))
        return sig, codegen

    # numba needs a typer with one named parameter per argument (no *args)
    params = ", ".join(f"a{i}" for i in range(len(fn.args)))
    scope: dict[str, Any] = {"check": check}
    exec(f"def {fn.name}(typingctx, {params}):\n    return check(typingctx, {params})\n",
         scope)
    typer = scope[fn.name]
    return intrinsic(typer)  # type: ignore[no-any-return]


def _placeholder_symbol(name: str) -> None:
    # numba JIT-finalises every library it compiles; a call to a symbol that only our linked
    # module defines must resolve there too. It is never called in this process: abort().
    import ctypes

    import llvmlite.binding as llvm

    if not llvm.address_of_symbol(name):
        llvm.add_symbol(name, ctypes.cast(ctypes.CDLL(None).abort, ctypes.c_void_p).value)


class _UnoptimisedCodegen(_JITCPUCodegen):  # type: ignore[misc]
    """numba's JIT codegen with its optimiser at level 0, for this back end only.

    The linked module is optimised once, at the level asked for, by ``link.optimise``; running
    numba's pipeline first would only cost time. Only the libraries of the functions lowered
    here use this codegen: ``%%foxjit`` functions they call compile through their own
    dispatchers and numba's shared codegen, optimised as always. numba's global configuration
    is never changed.
    """

    def _pass_builder(self, **kwargs: Any) -> Any:
        kwargs.update(opt=0, loop_vectorize=False, slp_vectorize=False)
        return super()._pass_builder(**kwargs)

    def _module_pass_manager(self, **kwargs: Any) -> Any:
        kwargs.pop("cost", None)  # numba's "cheap" round adds passes unless config.OPT is 0
        return super()._module_pass_manager(**kwargs)


class _AotTarget(_CPUTarget):  # type: ignore[misc]
    """numba's CPU target with a context using :class:`_UnoptimisedCodegen` (built once)."""

    @functools.cached_property
    def _context(self) -> Any:
        shared = _cpu_target.target_context
        return shared.subtarget(_internal_codegen=_UnoptimisedCodegen("foxnb.aot"))

    @property
    def target_context(self) -> Any:
        return self._context

    @property
    def typing_context(self) -> Any:
        return _cpu_target.typing_context  # one typing context: dispatchers type each other


_AOT_TARGET = _AotTarget("cpu")


class _AotDispatcher(_CPUDispatcher):  # type: ignore[misc]
    targetdescr = _AOT_TARGET


@functools.cache
def _type_only_pipeline() -> Any:
    """A numba compiler class that stops after type inference (no lowering); made once."""
    compiler: Any = importlib.import_module("numba.core.compiler")
    machinery: Any = importlib.import_module("numba.core.compiler_machinery")
    typed_passes: Any = importlib.import_module("numba.core.typed_passes")

    class _StopAfterTyping(machinery.AnalysisPass):  # type: ignore[misc]
        _name = "foxnb_stop_after_typing"

        def __init__(self) -> None:
            machinery.AnalysisPass.__init__(self)

        def run_pass(self, state: Any) -> bool:
            raise compiler._EarlyPipelineCompletion(True)

    machinery.register_pass(mutates_CFG=False, analysis_only=True)(_StopAfterTyping)

    class _TypeOnly(compiler.CompilerBase):  # type: ignore[misc]
        def define_pipelines(self) -> list[Any]:
            pm = compiler.DefaultPassBuilder.define_untyped_pipeline(self.state)
            pm.add_pass(typed_passes.NopythonTypeInference, "nopython frontend")
            pm.add_pass(_StopAfterTyping, "stop after typing")
            pm.finalize()
            return [pm]

    return _TypeOnly


def _types(disp: Any, sig: Any) -> bool:
    """Whether numba can type ``disp``'s function for ``sig`` (nothing is lowered)."""
    compiler: Any = importlib.import_module("numba.core.compiler")
    try:
        compiler.compile_extra(_cpu_target.typing_context, _AOT_TARGET.target_context,
                               disp.py_func, tuple(sig.args), sig.return_type,
                               compiler.Flags(), {}, pipeline_class=_type_only_pipeline())
    except errors.NumbaError:
        return False
    return True


def _assigned_into(func: Any) -> set[str]:
    """Names the function's source assigns items or slices of (``x[i] = ...``, ``x[:] += ...``);
    empty when the source cannot be read (then typing decides alone)."""
    import ast
    import inspect
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return set()
    found: set[str] = set()
    for node in ast.walk(tree):
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AugAssign | ast.AnnAssign) else [])
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Subscript) and isinstance(sub.value, ast.Name):
                    found.add(sub.value.id)
    return found


def _read_only(sig: Any, which: Sequence[int]) -> Any:
    """``sig`` with the arrays at positions ``which`` made read-only."""
    args = [t.copy(readonly=True) if i in which else t for i, t in enumerate(sig.args)]
    return numba.core.typing.signature(sig.return_type, *args)


def _compile(disp: Any, sig: Any) -> Any:
    """Compile ``disp`` for ``sig``, with every array argument the function does not write
    typed read-only (so read-only arrays are accepted for it); returns numba's result."""
    def build(s: Any) -> Any:
        disp.compile(s if s.return_type is not None else tuple(s.args))
        return disp.overloads[tuple(s.args)]

    # Arrays the source assigns into (``out[i] = v``) are written: no need to type them
    # read-only first (each failed attempt costs numba a typing pass).
    written = _assigned_into(disp.py_func)
    names = disp.py_func.__code__.co_varnames
    arrays = [i for i, t in enumerate(sig.args) if isinstance(t, nbtypes.Array) and t.mutable
              and names[i] not in written]
    if not arrays:
        return build(sig)
    try:
        return build(_read_only(sig, arrays))  # the usual case: the function only reads
    except errors.NumbaError:
        pass
    # Some argument is written (or passed where numba needs a writeable array): find which
    # ones by typing alone, one argument read-only at a time.
    readable = [] if len(arrays) == 1 else [i for i in arrays
                                             if _types(disp, _read_only(sig, [i]))]
    if readable and len(readable) < len(arrays):
        try:
            return build(_read_only(sig, readable))
        except errors.NumbaError:
            pass
    return build(sig)


_ARITY = re.compile(r"^(\w+)\(\) (?:takes (\d+) positional arguments? but (\d+) (?:was|were) "
                    r"given|missing (\d+) required positional arguments?)")


def _stub_arity(exc: TypeError, linked: Mapping[str, ExportedFunction]) -> str | None:
    # Python's own message about the stub's typer counts numba's typing context too.
    match = _ARITY.match(str(exc))
    fn = linked.get(match.group(1)) if match else None
    if match is None or fn is None:
        return None
    want = len(fn.args)
    got = int(match.group(3)) - 1 if match.group(3) else want - int(match.group(4))
    return (f"{fn.name} (from an earlier %%foxaot cell) takes {want} "
            f"argument{'' if want == 1 else 's'}, got {got}: {fn.pretty()}")


def _reason(exc: BaseException) -> str:
    return first_reason(str(exc)) or type(exc).__name__


def _line(exc: BaseException) -> int | None:
    loc = getattr(exc, "loc", None)
    if loc is not None and getattr(loc, "line", None):
        return int(loc.line)
    found = re.findall(r'File "[^"]*", line (\d+)', _ANSI.sub("", str(exc)))
    return int(found[-1]) if found else None


def _same_result(got: Any, want: Any) -> bool:
    # a read-only view of a read-only argument is what the signature's array means
    if isinstance(got, nbtypes.Array) and isinstance(want, nbtypes.Array):
        return bool(got.copy(readonly=False) == want)
    return bool(got == want)


def lower_functions(
    specs: Sequence[AotFunctionSpec],
    *,
    error_model: str = "numpy",
    fastmath: bool = False,
    boundscheck: bool = False,
    linked: Mapping[str, ExportedFunction] = {},
) -> list[LoweredFunction]:
    """Type and lower every spec that has a signature; internal callees come along.

    Parameters
    ----------
    specs : sequence of AotFunctionSpec
        Functions of the library; those with ``signature=None`` are internal callees.
    error_model : {"numpy", "python"}
        numba's error model (``numpy`` drops the raise paths of division by zero).
    fastmath : bool
        Allow LLVM fast-math flags.
    boundscheck : bool
        Check array indices (IndexError instead of reading past the end).
    linked : mapping
        Functions of earlier libraries by Python name; calls to them become calls to their
        native symbols, resolved by linking their IR.

    Returns
    -------
    list of LoweredFunction
        One per spec with a signature, in order.
    """
    if error_model not in ("numpy", "python"):
        raise ValueError(f"error_model must be 'numpy' or 'python', got {error_model!r}")
    sigs = {s.name: parse_signature(s.name, s.signature) for s in specs if s.signature}
    flags = dict(
        error_model=error_model, fastmath=fastmath, boundscheck=boundscheck,
        no_cpython_wrapper=True,
        no_cfunc_wrapper=True,
    )
    namespace: dict[str, Any] = {}
    for spec in specs:
        namespace.update(spec.py_func.__globals__)
    namespace.update({name: linked_stub(fn) for name, fn in linked.items()})
    dispatchers: dict[str, Any] = {}
    for spec in specs:
        f = spec.py_func
        rebuilt = pytypes.FunctionType(
            f.__code__, namespace, f.__name__, f.__defaults__, f.__closure__
        )
        rebuilt.__qualname__ = f.__qualname__
        rebuilt.__module__ = f.__module__
        dispatchers[spec.name] = _AotDispatcher(rebuilt, targetoptions=dict(flags, nopython=True))
    namespace.update(dispatchers)

    out = []
    with global_compiler_lock:
        for spec in specs:
            if spec.name not in sigs:
                continue
            disp, sig = dispatchers[spec.name], sigs[spec.name]
            try:
                cres = _compile(disp, sig)
            except TypeError as exc:  # a call to a linked stub with the wrong arity
                reason = _stub_arity(exc, linked)
                if reason is None:
                    raise
                raise FoxnbCompileError(f"cannot compile {spec.name!r}: {reason}",
                                        function=spec.name, reason=reason) from None
            except errors.NumbaError as exc:
                reason, line = _reason(exc), _line(exc)
                where = f" (line {line})" if line else ""
                raise FoxnbCompileError(
                    f"cannot compile {spec.name!r}{where}: {reason}",
                    function=spec.name, line=line, reason=reason,
                ) from None
            if sig.return_type is not None and not _same_result(cres.signature.return_type,
                                                                sig.return_type):
                raise FoxnbCompileError(
                    f"{spec.name!r} returns {cres.signature.return_type}, "
                    f"not {sig.return_type} as its signature says",
                    function=spec.name, reason="return type mismatch",
                )
            to_value_spec(cres.signature.return_type, name=spec.name)
            code = spec.py_func.__code__
            out.append(LoweredFunction(
                spec=spec,
                arg_names=tuple(code.co_varnames[: code.co_argcount]),
                signature=cres.signature,
                abi_symbol=cres.fndesc.mangled_name,
                ir=cres.library.get_llvm_str(),
            ))
    return out
