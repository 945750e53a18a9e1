"""Plain data of the toolchain: value specs, JSON round trip, signatures from annotations."""

from __future__ import annotations

from typing import Any

import pytest

from foxnb.engines._aot.spec import ExportedFunction, ValueSpec, signature_from_annotations


def define(src: str) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(src, "<cell>", "exec", dont_inherit=True), namespace)
    return namespace["f"]


@pytest.mark.parametrize(("spec", "text"), [
    (ValueSpec("float64"), "float64"),
    (ValueSpec("int32", 1), "int32[::1]"),
    (ValueSpec("float32", 3), "float32[:, :, ::1]"),
    (ValueSpec("none"), "none"),
])
def test_value_spec_describe(spec: ValueSpec, text: str) -> None:
    assert spec.describe() == text


def test_exported_function_json_round_trip() -> None:
    fn = ExportedFunction(
        name="f", arg_names=("x", "n"), args=(ValueSpec("float64", 1), ValueSpec("int64")),
        result=ValueSpec("float64"), c_symbol="f", packed_symbol="_foxnb_packed_f",
        abi_symbol="_foxabc_ZN1f", signature="float64(float64[::1], int64)",
    )
    assert ExportedFunction.from_json(fn.to_json()) == fn
    assert fn.pretty() == "f(float64[::1], int64) -> float64"


@pytest.mark.parametrize(("src", "sig"), [
    ('def f(x: "float64[::1]", n: "int64") -> "float64":\n    pass\n',
     "float64(float64[::1], int64)"),
    ('def f(x: "float64") :\n    pass\n', "(float64,)"),
    ("def f(x):\n    pass\n", None),
])
def test_signature_from_annotations(src: str, sig: str | None) -> None:
    assert signature_from_annotations(define(src)) == sig


def test_quoted_annotations_under_postponed_evaluation() -> None:
    src = ("from __future__ import annotations\n"
           'def f(x: "int64", y: float32) -> "bool":\n    pass\n')
    assert signature_from_annotations(define(src)) == "bool(int64, float32)"


def test_partial_annotations_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"missing: n.*--sig"):
        signature_from_annotations(define('def f(x: "float64", n):\n    pass\n'))


def test_non_string_annotation_is_rejected() -> None:
    with pytest.raises(TypeError, match="in quotes"):
        signature_from_annotations(define("def f(x: float):\n    pass\n"))
