"""Layers point one way: magics → cells → registry → engines → cache/orchestrator, and the IR
imports none of them. Every import counts, those inside functions too (a lazy import upward
is still a dependency upward)."""

from __future__ import annotations

import ast
from pathlib import Path

import foxnb

ORDER = ("magics", "cells", "registry", "engines", "cache", "orchestrator")
PACKAGE = Path(foxnb.__file__).parent


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "foxnb" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in (*ORDER, "ir") else None


def _imports(path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, node.module)]
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return found


def _upward(importer: str, imported: str) -> bool:
    if importer == "ir":
        return imported in ORDER
    if imported == "ir":
        return False
    return ORDER.index(imported) < ORDER.index(importer)


def test_no_layer_imports_one_above_it() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(("foxnb", *path.relative_to(PACKAGE).with_suffix("").parts))
        me = _layer(module.removesuffix(".__init__"))
        if me is None:
            continue
        for line, name in _imports(path):
            other = _layer(name)
            if other is not None and other != me and _upward(me, other):
                wrong.append(f"{path.relative_to(PACKAGE)}:{line} ({me}) imports {name}")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_the_check_sees_an_upward_import() -> None:
    # The rule itself, so the test above cannot pass by finding nothing.
    assert _upward("engines", "cells") and _upward("ir", "registry")
    assert not _upward("cells", "engines") and not _upward("registry", "ir")
    assert _imports(PACKAGE / "cells.py")  # it reads imports at all
