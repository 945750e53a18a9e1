"""Our C-ABI wrappers around numba's native functions, written with ``llvmlite.ir``.

For each exported function two wrappers are emitted:

* ``int32_t NAME(args..., RESULT *result)`` -- the C entry point declared in the header.
  Scalars pass by value (``bool`` as one byte, complex numbers as C's ``_Complex``); an array
  of ``k`` dimensions passes as ``T *data, int64_t shape0, ..., int64_t shape{k-1}``
  (C-contiguous), followed by ``int64_t strides0, ..., strides{k-1}`` in bytes when its
  signature says any layout (``float64[:]``); an array result is written to a
  :c:type:`foxnb_array`, a tuple result to a struct of its items.
* ``int32_t _foxnb_packed_NAME(int64_t *slots, void *result, void **excinfo)`` -- one uniform
  entry point for the Python binding: scalars occupy one 8-byte slot each (``complex128``
  two), an array occupies ``1 + k`` slots (data pointer, then the shape) or ``1 + 2k`` with
  its strides; ``excinfo`` receives numba's exception info when a user exception is raised.

Both return 0 on success and numba's status code otherwise (1 or more: a user exception).
"""

from __future__ import annotations

import importlib
import platform
from collections.abc import Sequence
from typing import Any

from llvmlite import ir

from foxnb.engines._aot.lower import LoweredFunction, to_value_spec
from foxnb.engines._aot.spec import MAX_NDIM, ExportedFunction, ValueSpec

# numba's partial annotations do not cover the internals used here: treat them as Any.
cgutils: Any = importlib.import_module("numba.core.cgutils")
cpu_target: Any = importlib.import_module("numba.core.registry").cpu_target

_i8 = ir.IntType(8)
_i32 = ir.IntType(32)
_i64 = ir.IntType(64)
_ptr = ir.PointerType(_i8)
_X86_64 = platform.machine().lower() in ("x86_64", "amd64")

#: ``foxnb_array``: meminfo, data, ndim, shape[MAX_NDIM], strides[MAX_NDIM] (bytes).
ARRAY_STRUCT = ir.LiteralStructType(
    [_ptr, _ptr, _i64, ir.ArrayType(_i64, MAX_NDIM), ir.ArrayType(_i64, MAX_NDIM)]
)


def packed_symbol(name: str) -> str:
    """Symbol of the uniform entry point used by the Python binding."""
    return f"_foxnb_packed_{name}"


def _c_param_types(context: Any, nbtype: Any, spec: ValueSpec, *,
                   packed: bool = False) -> list[ir.Type]:
    """LLVM types of one argument's parameters: at the C entry point as a C compiler passes
    them, in the packed entry point as numba holds them (one type per slot group)."""
    if spec.is_array:
        return [_ptr] + [_i64] * (spec.slots - 1)
    if spec.dtype == "bool":
        return [_i8]
    if spec.dtype == "complex64" and not packed and _X86_64:
        return [ir.VectorType(ir.FloatType(), 2)]  # float _Complex: one SSE register
    return [context.get_value_type(nbtype)]


def _to_numba(context: Any, builder: ir.IRBuilder, nbtype: Any, spec: ValueSpec,
              params: Sequence[ir.Value]) -> ir.Value:
    if not spec.is_array:
        (value,) = params
        if spec.dtype == "bool":
            return builder.icmp_unsigned("!=", value, _i8(0))
        if isinstance(value.type, ir.VectorType):  # float _Complex -> numba's {float, float}
            pair = ir.Constant(context.get_value_type(nbtype), None)
            for k in range(2):
                pair = builder.insert_value(pair, builder.extract_element(value, _i32(k)), k)
            return pair
        return value
    data, shape = params[0], list(params[1:1 + spec.ndim])
    itemsize = context.get_abi_sizeof(context.get_data_type(nbtype.dtype))
    if spec.strided:
        strides = list(params[1 + spec.ndim:])
    else:
        strides = [_i64(itemsize)]
        for extent in reversed(shape[1:]):
            strides.insert(0, builder.mul(strides[0], extent))
    ary = context.make_array(nbtype)(context, builder)
    datatype = ary.data.type
    context.populate_array(
        ary, data=builder.bitcast(data, datatype), shape=shape, strides=strides,
        itemsize=_i64(itemsize), meminfo=None,
    )
    return ary._getvalue()


def _c_type(context: Any, nbtype: Any, spec: ValueSpec) -> ir.Type:
    """LLVM type of one result item as the C header lays it out."""
    if spec.is_array:
        return ARRAY_STRUCT
    return _i8 if spec.dtype == "bool" else context.get_value_type(nbtype)


def _store_result(context: Any, builder: ir.IRBuilder, nbtype: Any, spec: ValueSpec,
                  value: ir.Value, result: ir.Value) -> None:
    if spec.dtype == "none":
        return
    if spec.is_tuple:
        struct = ir.LiteralStructType([_c_type(context, t, i)
                                       for t, i in zip(nbtype, spec.items, strict=True)])
        out = builder.bitcast(result, struct.as_pointer())
        for k, (t, item) in enumerate(zip(nbtype, spec.items, strict=True)):
            member = builder.bitcast(builder.gep(out, [_i32(0), _i32(k)]), _ptr)
            _store_result(context, builder, t, item, builder.extract_value(value, k), member)
        return
    if not spec.is_array:
        if spec.dtype == "bool":
            value = builder.zext(value, _i8)
        builder.store(value, builder.bitcast(result, value.type.as_pointer()))
        return
    ary = context.make_array(nbtype)(context, builder, value=value)
    out = builder.bitcast(result, ARRAY_STRUCT.as_pointer())

    def field(*idx: int) -> ir.Value:
        return builder.gep(out, [_i32(0), *(_i32(i) for i in idx)])

    builder.store(builder.bitcast(ary.meminfo, _ptr), field(0))
    builder.store(builder.bitcast(ary.data, _ptr), field(1))
    builder.store(_i64(spec.ndim), field(2))
    shape = cgutils.unpack_tuple(builder, ary.shape, spec.ndim)
    strides = cgutils.unpack_tuple(builder, ary.strides, spec.ndim)
    for k in range(spec.ndim):
        builder.store(shape[k], field(3, k))
        builder.store(strides[k], field(4, k))


def _emit_call(context: Any, builder: ir.IRBuilder, fn: LoweredFunction, callee: ir.Function,
               args: Sequence[ir.Value], result: ir.Value | None,
               excinfo: ir.Value | None) -> None:
    sig = fn.signature
    status, value = context.call_conv.call_function(
        builder, callee, sig.return_type, sig.args, list(args)
    )
    with builder.if_else(status.is_ok) as (ok, failed):
        with ok:
            if result is not None:
                spec = to_value_spec(sig.return_type, name=fn.spec.name)
                _store_result(context, builder, sig.return_type, spec, value, result)
            builder.ret(_i32(0))
        with failed:
            if excinfo is not None:
                with builder.if_then(status.is_user_exc):
                    builder.store(builder.bitcast(status.excinfoptr, _ptr), excinfo)
            builder.ret(status.code)
    builder.unreachable()


def build_wrappers(functions: Sequence[LoweredFunction], *, module_name: str,
                   abi_symbols: dict[str, str]) -> tuple[str, list[ExportedFunction]]:
    """Emit the wrapper module for ``functions``.

    Parameters
    ----------
    functions : sequence of LoweredFunction
        The exported functions.
    module_name : str
        Name of the LLVM module.
    abi_symbols : dict
        numba's mangled name -> the name it has in the linked module (after renaming).

    Returns
    -------
    (str, list of ExportedFunction)
        The module's IR text and the description of each export.
    """
    context = cpu_target.target_context
    module = context.codegen()._create_empty_module(module_name)
    exports = []
    for fn in functions:
        sig = fn.signature
        name = fn.spec.name
        arg_specs = [to_value_spec(t, name=name) for t in sig.args]
        res_spec = to_value_spec(sig.return_type, name=name)
        abi = abi_symbols[fn.abi_symbol]
        callee = cgutils.get_or_insert_function(
            module, context.call_conv.get_function_type(sig.return_type, sig.args), abi
        )
        # C entry point
        params = [p for t, s in zip(sig.args, arg_specs, strict=True)
                  for p in _c_param_types(context, t, s)]
        has_result = res_spec.dtype != "none"
        fnty = ir.FunctionType(_i32, params + ([_ptr] if has_result else []))
        cfn = ir.Function(module, fnty, name)
        builder = ir.IRBuilder(cfn.append_basic_block("entry"))
        args, pos = [], 0
        for t, s in zip(sig.args, arg_specs, strict=True):
            count = len(_c_param_types(context, t, s))
            args.append(_to_numba(context, builder, t, s, cfn.args[pos: pos + count]))
            pos += count
        _emit_call(context, builder, fn, callee, args,
                   cfn.args[-1] if has_result else None, None)
        # packed entry point
        pfn = ir.Function(module, ir.FunctionType(_i32, [_ptr, _ptr, _ptr]), packed_symbol(name))
        builder = ir.IRBuilder(pfn.append_basic_block("entry"))
        slots = builder.bitcast(pfn.args[0], _i64.as_pointer())
        args, pos = [], 0
        for t, s in zip(sig.args, arg_specs, strict=True):
            values = []
            for k, ty in enumerate(_c_param_types(context, t, s, packed=True)):
                slot = builder.gep(slots, [_i64(pos + k)])
                values.append(builder.load(builder.bitcast(slot, ty.as_pointer())))
            args.append(_to_numba(context, builder, t, s, values))
            pos += s.slots
        excinfo = builder.bitcast(pfn.args[2], _ptr.as_pointer())
        _emit_call(context, builder, fn, callee, args, pfn.args[1], excinfo)
        exports.append(ExportedFunction(
            name=name, arg_names=fn.arg_names, args=tuple(arg_specs), result=res_spec,
            c_symbol=name, packed_symbol=packed_symbol(name), abi_symbol=abi,
            signature=f"{res_spec.describe()}({', '.join(a.describe() for a in arg_specs)})",
        ))
    return str(module), exports
