"""Plain data shared by the build side and the loader (no numba, no llvmlite): the types of
exported functions and their values. What a build takes and makes is in ``artifact``."""

from typing import Any, NamedTuple

#: Scalar type names supported at the C ABI, with their C spelling and numpy dtype name.
SCALARS: dict[str, tuple[str, str]] = {
    "float64": ("double", "float64"),
    "float32": ("float", "float32"),
    "int64": ("int64_t", "int64"),
    "int32": ("int32_t", "int32"),
    "int16": ("int16_t", "int16"),
    "int8": ("int8_t", "int8"),
    "uint64": ("uint64_t", "uint64"),
    "uint32": ("uint32_t", "uint32"),
    "uint16": ("uint16_t", "uint16"),
    "uint8": ("uint8_t", "uint8"),
    "bool": ("bool", "bool"),
    "complex64": ("float _Complex", "complex64"),
    "complex128": ("double _Complex", "complex128"),
}

#: Size and alignment in bytes at the C ABI of each scalar (``foxnb_array`` is 152, 8).
SIZES: dict[str, int] = {"float64": 8, "float32": 4, "int64": 8, "int32": 4, "int16": 2,
                         "int8": 1, "uint64": 8, "uint32": 4, "uint16": 2, "uint8": 1,
                         "bool": 1, "complex64": 8, "complex128": 16}

#: Largest number of array dimensions at the C ABI.
MAX_NDIM = 8
#: Largest number of 8-byte argument slots foxaot gives a function (one per scalar, 1 + ndim
#: per array): its own limit, below what the binding takes.
MAX_SLOTS = 256
#: Size of ``foxnb_array``: meminfo, data, ndim, then shape and strides.
ARRAY_SIZE = 16 + 8 * (1 + 2 * MAX_NDIM)

SIG_FORM = '--sig "NAME:float64(float64[::1], int64)"'


class ValueSpec(NamedTuple):
    """A value at the C ABI: a scalar (``ndim == 0``), an array, a tuple or ``none``.

    An array has ``layout`` ``"C"`` (C-contiguous: data pointer and extents) or ``"A"`` (any
    strides: data pointer, extents, then byte strides); an argument that the function never
    writes is ``readonly`` (it accepts read-only arrays). A tuple (``dtype == "tuple"``) lists
    its ``items``; it is only a result.
    """

    dtype: str
    ndim: int = 0
    layout: str = "C"
    readonly: bool = False
    items: "tuple[ValueSpec, ...]" = ()

    @property
    def is_array(self) -> bool:
        return self.ndim > 0

    @property
    def is_tuple(self) -> bool:
        return self.dtype == "tuple"

    @property
    def strided(self) -> bool:
        return self.ndim > 0 and self.layout != "C"

    @property
    def slots(self) -> int:
        """8-byte slots the value takes in the binding's argument block."""
        if self.is_array:
            return 1 + self.ndim * (2 if self.strided else 1)
        return 2 if self.dtype == "complex128" else 1

    def describe(self) -> str:
        """Text used in signatures and error messages, e.g. ``float64[:, ::1]``."""
        if self.dtype == "none":
            return "none"
        if self.is_tuple:
            return f"Tuple({', '.join(i.describe() for i in self.items)})"
        if not self.ndim:
            return self.dtype
        last = ":" if self.strided else "::1"
        return f"{self.dtype}[{', '.join([':'] * (self.ndim - 1) + [last])}]"

    def to_json(self) -> list[Any]:
        return [self.dtype, self.ndim, self.layout, self.readonly,
                [i.to_json() for i in self.items]]

    @classmethod
    def from_json(cls, data: list[Any]) -> "ValueSpec":
        return cls(str(data[0]), int(data[1]), str(data[2]), bool(data[3]),
                   tuple(cls.from_json(i) for i in data[4]))


def result_layout(spec: ValueSpec) -> list[tuple[ValueSpec, int]]:
    """The items of a result and their byte offsets in its C struct (natural alignment, as a C
    compiler lays out ``struct { ... }``); a single result is one item at offset 0."""
    out, offset = [], 0
    for item in spec.items if spec.is_tuple else (spec,):
        size = ARRAY_SIZE if item.is_array else SIZES.get(item.dtype, 8)
        align = 8 if item.is_array else size // 2 if item.dtype.startswith("complex") else size
        offset = -(-offset // align) * align
        out.append((item, offset))
        offset += size
    return out


class ExportedFunction(NamedTuple):
    """What the loader and the header generator need to know about one exported function."""

    name: str
    arg_names: tuple[str, ...]
    args: tuple[ValueSpec, ...]
    result: ValueSpec
    c_symbol: str
    packed_symbol: str
    abi_symbol: str
    signature: str

    def pretty(self) -> str:
        """``pairsum(float64[::1], int64) -> float64``."""
        args = ", ".join(a.describe() for a in self.args)
        return f"{self.name}({args}) -> {self.result.describe()}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "arg_names": list(self.arg_names),
            "args": [a.to_json() for a in self.args],
            "result": self.result.to_json(),
            "c_symbol": self.c_symbol,
            "packed_symbol": self.packed_symbol,
            "abi_symbol": self.abi_symbol,
            "signature": self.signature,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ExportedFunction":
        return cls(
            name=str(data["name"]),
            arg_names=tuple(data["arg_names"]),
            args=tuple(ValueSpec.from_json(a) for a in data["args"]),
            result=ValueSpec.from_json(data["result"]),
            c_symbol=str(data["c_symbol"]),
            packed_symbol=str(data["packed_symbol"]),
            abi_symbol=str(data["abi_symbol"]),
            signature=str(data["signature"]),
        )
