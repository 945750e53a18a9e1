"""Names a code object loads: the one piece of bytecode analysis the IR and the keys share.

A leaf module (standard library only), so the IR does not depend on the cache layer.
"""

from __future__ import annotations

import dis
import types
from collections.abc import Iterator

__all__ = ["code_names", "scan"]


def _iter_code(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _iter_code(const)


def scan(code: types.CodeType, *, nested: bool = True
         ) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...], tuple[str, ...]]:
    """One pass over ``code`` (and, if ``nested``, the code objects inside it): the globals it
    loads, ``(global, attribute path)`` pairs read on them such as ``("mylib", "SCALE")`` or
    ``("pkg", "sub.K")``, and the globals it assigns or deletes."""
    names: set[str] = set()
    attrs: set[tuple[str, str]] = set()
    written: set[str] = set()
    for c in _iter_code(code) if nested else (code,):
        head: str | None = None
        path: list[str] = []
        for ins in dis.get_instructions(c):
            if ins.opname in ("LOAD_ATTR", "LOAD_METHOD") and head is not None:
                path.append(str(ins.argval))
                continue
            if head is not None and path:
                attrs.add((head, ".".join(path)))
            head, path = None, []
            if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
                head = str(ins.argval)
                names.add(head)
            elif ins.opname in ("STORE_GLOBAL", "DELETE_GLOBAL"):
                written.add(str(ins.argval))
        if head is not None and path:
            attrs.add((head, ".".join(path)))
    return tuple(sorted(names)), tuple(sorted(attrs)), tuple(sorted(written))


def code_names(code: types.CodeType) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """Globals that ``code`` (nested code included) loads, and the attribute paths read on
    them (see :func:`scan`)."""
    names, attrs, _ = scan(code)
    return names, attrs
