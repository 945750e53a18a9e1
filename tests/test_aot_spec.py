"""Plain data of the toolchain: value specs and their JSON round trip."""

from __future__ import annotations

from typing import Any

import pytest

from foxnb.engines._aot.spec import ExportedFunction, ValueSpec


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
