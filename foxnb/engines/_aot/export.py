"""Export an artifact for C users: the ``.so``, the ``.h`` and a ``main.c`` that calls it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from foxnb.engines._aot.artifact import AotArtifact
from foxnb.engines._aot.header import c_type, result_struct
from foxnb.engines._aot.spec import SCALARS, ExportedFunction, ValueSpec

_FORMAT = {"double": "%.17g", "float": "%.9g", "bool": "%d", "int64_t": "%lld",
           "uint64_t": "%llu"}
_CAST = {"int64_t": "(long long)", "uint64_t": "(unsigned long long)"}


def sample_shape(spec: ValueSpec) -> tuple[int, ...]:
    """Shape of the sample array ``main.c`` passes for an array argument."""
    return {1: (64,), 2: (8, 8)}.get(spec.ndim, (4,) * spec.ndim)


def sample_scalar(spec: ValueSpec) -> Any:
    """Sample scalar ``main.c`` passes: 1.5 for floats, 1.5+0.5j for complex numbers, 3 for
    integers, true for bool."""
    if spec.dtype.startswith("complex"):
        return 1.5 + 0.5j
    if spec.dtype.startswith("float"):
        return 1.5
    return True if spec.dtype == "bool" else 3


def sample_element(spec: ValueSpec, i: int) -> Any:
    """Element ``i`` (flat index) of a sample array."""
    if spec.dtype == "bool":
        return i % 2 == 1
    return i % 7 + 1


def _fmt(ctype: str) -> str:
    return _FORMAT.get(ctype, "%lld" if "int" in ctype else "%.17g")


def _value(ctype: str, expr: str) -> str:
    return f"{_CAST.get(ctype, '(long long)' if 'int' in ctype else '')}{expr}"


def _print_scalar(ctype: str, expr: str) -> tuple[str, list[str]]:
    """printf format and arguments for one scalar; complex as ``1.5+0.5j`` (Python's form)."""
    if ctype.endswith("_Complex"):
        fmt = "%.9g" if ctype.startswith("float") else "%.17g"
        part = "crealf" if ctype.startswith("float") else "creal"
        return f"{fmt}{fmt.replace('%', '%+')}j", [f"{part}({expr})",
                                                  f"{part.replace('real', 'imag')}({expr})"]
    return _fmt(ctype), [_value(ctype, expr)]


def _print_item(spec: ValueSpec, expr: str, indent: str) -> list[str]:
    """Lines printing one result value ``expr`` (a scalar, or a foxnb_array) after a space."""
    ctype = SCALARS[spec.dtype][0]
    if not spec.is_array:
        fmt, args = _print_scalar(ctype, expr)
        return [f'{indent}printf(" {fmt}", {", ".join(args)});']
    fmt, args = _print_scalar(ctype, f"*({ctype} *)((char *){expr}.data + off)")
    return [
        f"{indent}{{",
        f"{indent}    int64_t n = 1;",
        f"{indent}    for (int64_t d = 0; d < {expr}.ndim; d++) n *= {expr}.shape[d];",
        f"{indent}    for (int64_t i = 0; i < n; i++) {{",
        f"{indent}        int64_t rest = i, off = 0; /* row-major index -> byte offset */",
        f"{indent}        for (int64_t d = {expr}.ndim - 1; d >= 0; d--) {{",
        f"{indent}            off += (rest % {expr}.shape[d]) * {expr}.strides[d];",
        f"{indent}            rest /= {expr}.shape[d];",
        f"{indent}        }}",
        f'{indent}        printf(" {fmt}", {", ".join(args)});',
        f"{indent}    }}",
        f"{indent}    foxnb_release({expr}.meminfo);",
        f"{indent}}}",
    ]


def _call(fn: ExportedFunction) -> list[str]:
    lines, args = [f"    {{ /* {fn.pretty()} */"], []
    for raw, spec in zip(fn.arg_names, fn.args, strict=True):
        name = f"foxnb_arg_{raw}"
        if spec.is_array:
            shape = sample_shape(spec)
            total = 1
            for extent in shape:
                total *= extent
            ctype = SCALARS[spec.dtype][0]
            lines.append(f"        static {ctype} {name}[{total}];")
            lines.append(f"        for (int i = 0; i < {total}; i++) {name}[i] = "
                         + ("i % 2 == 1;" if spec.dtype == "bool" else f"({ctype})(i % 7 + 1);"))
            args.append(name)
            args.extend(str(extent) for extent in shape)
            if spec.strided:  # C-contiguous byte strides of the sample
                stride = [f"(int64_t)sizeof({ctype})"]
                for extent in reversed(shape[1:]):
                    stride.insert(0, f"{extent} * {stride[0]}")
                args.extend(stride)
        else:
            value = sample_scalar(spec)
            args.append("true" if value is True else f"({value.real!r} + {value.imag!r} * I)"
                        if isinstance(value, complex) else repr(value))
    if fn.result.is_tuple:
        lines.append(f"        {result_struct(fn)} foxnb_result;")
        args.append("&foxnb_result")
    elif fn.result.is_array:
        lines.append("        foxnb_array foxnb_result;")
        args.append("&foxnb_result")
    elif fn.result.dtype != "none":
        lines.append(f"        {c_type(fn.result)} foxnb_result;")
        args.append("&foxnb_result")
    lines.append(f"        int32_t foxnb_status = {fn.c_symbol}({', '.join(args)});")
    lines.append(f'        if (foxnb_status != 0) {{ printf("{fn.name}: status %d\\n", '
                 "(int)foxnb_status); foxnb_failures++; }")
    if fn.result.dtype == "none":
        lines.append(f'        else printf("{fn.name} -> ok\\n");')
    else:
        lines += ["        else {", f'            printf("{fn.name} ->");']
        items = list(enumerate(fn.result.items)) if fn.result.is_tuple else [(-1, fn.result)]
        for k, item in items:
            expr = f"foxnb_result.f{k}" if k >= 0 else "foxnb_result"
            if k > 0:
                lines.append('            printf(" ;");')
            lines += _print_item(item, expr, "            ")
        lines += ['            printf("\\n");', "        }"]
    lines.append("    }")
    return lines


def render_example(artifact: AotArtifact) -> str:
    """``main.c``: calls each exported function with sample data and prints the results."""
    lines = [
        f"/* Example generated by foxnb: calls every function of {artifact.name}.",
        f" * Build: cc main.c ./{artifact.name}.so -Wl,-rpath,'$ORIGIN' -o main && ./main",
        " * Sample data: arrays hold i % 7 + 1, scalars are 1.5 (float), 1.5+0.5j (complex) or 3 "
        "(integer). */",
        "#include <stdio.h>",
        "#include <stdbool.h>",
        "#include <complex.h>",
        f'#include "{artifact.name}.h"',
        "",
        "int main(void) {",
        "    int foxnb_failures = 0;",
    ]
    for fn in artifact.functions:
        lines += _call(fn)
    lines += ["    return foxnb_failures != 0;", "}", ""]
    return "\n".join(lines)


def export_library(artifact: AotArtifact, directory: Path) -> Path:
    """Write ``<name>.so``, ``<name>.h`` and ``main.c`` into ``directory``.

    Parameters
    ----------
    artifact : AotArtifact
        A built library.
    directory : Path
        Destination (created if missing).

    Returns
    -------
    Path
        The directory.
    """
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(artifact.library_path, directory / artifact.library_path.name)
    shutil.copyfile(artifact.header_path, directory / artifact.header_path.name)
    (directory / "main.c").write_text(render_example(artifact))
    return directory
