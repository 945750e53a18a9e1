"""Float divisions whose divisor is provably never zero lose their zero check.

Under numba's default ``error_model="python"``, every float division ``a / b`` tests
``b == 0`` and raises ``ZeroDivisionError`` as Python does. The test is a branch out of
the loop that contains it, and LLVM does not vectorise a loop with such an exit: in
``s += 1.0 / (1.0 + abs(x[i] - x[j]))`` the check costs a third of the time, yet the
divisor is at least 1.

:func:`nonzero_divisors` runs a sign analysis over a function's typed numba IR: each float
variable gets the set of signs (negative, zero, positive) its value can have, from
constants, ``abs``, ``sqrt``, ``+``, ``-``, ``*`` and ``/`` with IEEE rounding taken into
account (a product or quotient of positive numbers can underflow to zero; a sum of positive
numbers cannot). NaN compares unequal to zero, so it never takes the raising branch and the
analysis ignores it. :class:`FoxLower` lowers a division by a divisor that cannot be zero
to a bare ``fdiv``: the program raises exactly where it raised before, because the
branch it drops is never taken. Anything the analysis does not understand may be zero.

Fast-math flags that let LLVM change values (``reassoc``, ``nsz``, ``arcp``, ``afn``,
``nnan``, ``ninf``, or all of them) turn the analysis off: the proof is about the values
the program computes as written. ``contract`` (fused multiply-add) keeps it, since a
single rounding preserves every rule used here.
"""

from __future__ import annotations

import builtins
import math
import operator
from collections.abc import Callable, Iterator
from typing import Any

from numba.core import ir, lowering, types
from numba.core.compiler import CompilerBase, DefaultPassBuilder
from numba.core.compiler_machinery import register_pass
from numba.core.typed_passes import NativeLowering

__all__ = ["FoxCompiler", "FoxLower", "nonzero_divisors"]

NEG, ZERO, POS = 1, 2, 4
ANY = NEG | ZERO | POS
_SIGNS = (NEG, ZERO, POS)

#: Flags under which LLVM keeps the values of the program as written (see the docstring).
VALUE_PRESERVING_FLAGS = frozenset({"contract"})


def _combine(rule: Callable[[int, int], int], a: int, b: int) -> int:
    out = 0
    for sa in _SIGNS:
        if a & sa:
            for sb in _SIGNS:
                if b & sb:
                    out |= rule(sa, sb)
    return out


def _add(sa: int, sb: int) -> int:
    if sa == ZERO:
        return sb
    if sb == ZERO or sa == sb:  # rounding never takes a sum of same-signed numbers to zero
        return sa
    return ANY


def _mul(sa: int, sb: int) -> int:
    if ZERO in (sa, sb):
        return ZERO
    return (POS if sa == sb else NEG) | ZERO  # the product can underflow to zero


def _div(sa: int, sb: int) -> int:
    if sb == ZERO:  # raises (python model) or gives inf/nan (numpy model)
        return NEG | POS
    return _mul(sa, sb)


def _neg(a: int) -> int:
    return (a & ZERO) | (POS if a & NEG else 0) | (NEG if a & POS else 0)


def _abs(a: int) -> int:
    return (a & ZERO) | (POS if a & (NEG | POS) else 0)


def _sqrt(a: int) -> int:
    return a & (ZERO | POS)  # the square root of a negative number is nan


def _hypot(a: int, b: int) -> int:
    # hypot(x, y) >= max(|x|, |y|): zero only when both are
    return POS | ZERO if (a & ZERO) and (b & ZERO) else POS


_BINOPS: dict[Any, Callable[[int, int], int]] = {
    operator.add: lambda a, b: _combine(_add, a, b),
    operator.sub: lambda a, b: _combine(_add, a, _neg(b)),
    operator.mul: lambda a, b: _combine(_mul, a, b),
    operator.truediv: lambda a, b: _combine(_div, a, b),
}
_INPLACE = {operator.iadd: operator.add, operator.isub: operator.sub,
            operator.imul: operator.mul, operator.itruediv: operator.truediv}
_UNARY: dict[Any, Callable[[int], int]] = {operator.neg: _neg, operator.pos: lambda a: a}
_CALLS: dict[Any, Callable[..., int]] = {
    builtins.abs: _abs, math.fabs: _abs, math.sqrt: _sqrt, math.hypot: _hypot,
    math.exp: lambda a: POS | ZERO, math.cosh: lambda a: POS,
}


def _sign_of_number(value: Any) -> int:
    if isinstance(value, (bool, int, float)) and value == value:  # nan: no sign
        return ZERO if value == 0 else POS if value > 0 else NEG
    return ANY


class _Signs:
    """The sign sets of one function's variables, computed to a fixed point."""

    def __init__(self, func_ir: ir.FunctionIR, typemap: dict[str, Any]) -> None:
        self.typemap = typemap
        self.defs: dict[str, list[Any]] = {}
        for block in func_ir.blocks.values():
            for stmt in block.body:
                if isinstance(stmt, ir.Assign):
                    self.defs.setdefault(stmt.target.name, []).append(stmt.value)
        self.signs: dict[str, int] = dict.fromkeys(self.defs, 0)
        changed = True
        while changed:  # monotone over a finite lattice: terminates
            changed = False
            for name, values in self.defs.items():
                new = self.signs[name]
                for value in values:
                    new |= self._value(name, value)
                if new != self.signs[name]:
                    self.signs[name] = new
                    changed = True

    def of(self, name: str) -> int:
        return self.signs.get(name, ANY)

    def _value(self, target: str, value: Any) -> int:
        if isinstance(value, ir.Const):
            return _sign_of_number(value.value)
        if isinstance(value, (ir.Global, ir.FreeVar)):
            return _sign_of_number(value.value)
        if isinstance(value, ir.Var):
            return self.of(value.name)
        if not isinstance(value, ir.Expr):
            return ANY
        if value.op in ("cast", "phi"):
            sources = [value.value] if value.op == "cast" else value.incoming_values
            out = 0
            for source in sources:
                out |= self.of(source.name) if isinstance(source, ir.Var) else ANY
            return out
        if not isinstance(self.typemap.get(target), types.Float):
            return ANY  # integers wrap around: no sign rule holds for their arithmetic
        return self._float_expr(value)

    def _float_expr(self, expr: ir.Expr) -> int:
        if expr.op in ("binop", "inplace_binop"):
            fn = _INPLACE.get(expr.fn, expr.fn)
            rule = _BINOPS.get(fn)
            if rule is None:
                return ANY
            if fn is operator.mul and expr.lhs.name == expr.rhs.name:  # a square
                a = self._operand(expr.lhs)
                return (POS | ZERO if a & (NEG | POS) else 0) | (a & ZERO)
            return rule(self._operand(expr.lhs), self._operand(expr.rhs))
        if expr.op == "unary" and expr.fn in _UNARY:
            return _UNARY[expr.fn](self._operand(expr.value))
        if expr.op == "call" and not expr.kws and expr.vararg is None:
            call = _CALLS.get(self._callee(expr.func))
            if call is not None and len(expr.args) == call.__code__.co_argcount:
                return call(*(self._operand(a) for a in expr.args))
        return ANY

    def _operand(self, var: ir.Var) -> int:
        """The signs of an operand of a float operation; an integer operand's signs are
        those it has as a float (conversion keeps the sign and never gives zero)."""
        ty = self.typemap.get(var.name)
        return self.of(var.name) if isinstance(ty, (types.Float, types.Integer,
                                                     types.Boolean)) else ANY

    def _callee(self, var: ir.Var) -> Any:
        """The Python object a call's function variable holds, when the IR says."""
        values = self.defs.get(var.name, [])
        if len(values) != 1:
            return None
        value = values[0]
        if isinstance(value, (ir.Global, ir.FreeVar)):
            return value.value
        if isinstance(value, ir.Expr) and value.op == "getattr":
            owner = self._callee(value.value)
            return getattr(owner, value.attr, None) if owner is math else None
        if isinstance(value, ir.Var):
            return self._callee(value)
        return None


def nonzero_divisors(func_ir: ir.FunctionIR, typemap: dict[str, Any]) -> set[str]:
    """Names of the variables of ``func_ir`` that are never zero, as floats.

    Parameters
    ----------
    func_ir : numba.core.ir.FunctionIR
        A function's IR after type inference.
    typemap : dict
        numba's types of its variables.
    """
    signs = _Signs(func_ir, typemap)
    return {name for name, s in signs.signs.items() if s and not s & ZERO}


def _keeps_nonzero(source: Any, target: Any) -> bool:
    """Whether converting a nonzero ``source`` value to ``target`` keeps it nonzero: any
    integer does; a float only into the same type (float64 -> float32 can underflow)."""
    return (isinstance(source, (types.Integer, types.Boolean))
            or (isinstance(source, types.Float) and source == target))


class FoxLower(lowering.Lower):  # type: ignore[misc]
    """numba's lowering, with no zero check on divisions by a divisor that cannot be zero."""

    _fox_nonzero: set[str] | None = None

    def _nonzero(self) -> set[str]:
        if self._fox_nonzero is None:
            flags = self.context.fastmath  # False, or numba's FastMathOptions
            exact = not flags or set(flags.flags) <= VALUE_PRESERVING_FLAGS
            self._fox_nonzero = (nonzero_divisors(self.func_ir, self.fndesc.typemap)
                                 if exact else set())
        return self._fox_nonzero

    def lower_binop(self, resty: Any, expr: ir.Expr, op: Any) -> Any:
        signature = self.fndesc.calltypes[expr]
        if (op in (operator.truediv, operator.itruediv) and expr.rhs.name in self._nonzero()
                and isinstance(signature.return_type, types.Float)
                and signature.args == (signature.return_type,) * 2
                and _keeps_nonzero(self.typeof(expr.rhs.name), signature.args[1])):
            lhs = self.context.cast(self.builder, self.loadvar(expr.lhs.name),
                                    self.typeof(expr.lhs.name), signature.args[0])
            rhs = self.context.cast(self.builder, self.loadvar(expr.rhs.name),
                                    self.typeof(expr.rhs.name), signature.args[1])
            quotient = self.builder.fdiv(lhs, rhs)
            return self.context.cast(self.builder, quotient, signature.return_type, resty)
        return super().lower_binop(resty, expr, op)


@register_pass(mutates_CFG=True, analysis_only=False)
class FoxNativeLowering(NativeLowering):  # type: ignore[misc]
    """numba's lowering pass with :class:`FoxLower`."""

    _name = "foxnb_native_lowering"

    @property
    def lowering_class(self) -> type:
        return FoxLower


def _replace_lowering(passes: list[tuple[Any, str]]) -> Iterator[tuple[Any, str]]:
    for cls, description in passes:
        yield (FoxNativeLowering if cls is NativeLowering else cls), description


class FoxCompiler(CompilerBase):  # type: ignore[misc]
    """numba's nopython pipeline with :class:`FoxNativeLowering` (parfor lowering, used
    with ``parallel=True``, is numba's own)."""

    def define_pipelines(self) -> list[Any]:
        pm = DefaultPassBuilder.define_nopython_pipeline(self.state)
        pm.passes = list(_replace_lowering(pm.passes))
        return [pm]
