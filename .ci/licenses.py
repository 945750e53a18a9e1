"""Licence check of foxnb's runtime dependencies (``make licenses``).

Reads the JSON that ``pip-licenses --from=mixed --format=json`` wrote for the runtime venv
(build/runtime-venv: exactly requirements/runtime.lock) and fails when a package's licence is
not compatible with distributing foxnb under BSD-3-Clause.

A licence is an SPDX expression (``MIT``, ``BSD-2-Clause AND Apache-2.0 WITH LLVM-exception``,
``Apache-2.0 OR BSD-2-Clause``) or a trove classifier name (``BSD License``). ``AND`` needs
every part allowed, ``OR`` one alternative. Anything not on the allow list fails — copyleft
(GPL, LGPL, AGPL, SSPL, EUPL, ...), non-commercial or proprietary terms, and ``UNKNOWN`` alike:
a new dependency with such a licence needs a human decision before it is added here.

Usage: ``python .ci/licenses.py build/licenses.json``; exit status 1 names each offender.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

# Permissive licences (SPDX ids and the trove classifier names pip-licenses reports),
# compatible with a BSD-3-Clause project that depends on them without copying them in.
ALLOWED = frozenset({
    "MIT", "MIT License", "MIT-0",
    "BSD", "BSD License", "BSD-2-Clause", "BSD-3-Clause", "0BSD",
    "Apache-2.0", "Apache 2.0", "Apache License 2.0", "Apache Software License",
    "Apache-2.0 WITH LLVM-exception",
    "ISC", "ISC License (ISCL)",
    "PSF-2.0", "Python-2.0", "Python Software Foundation License",
    "Zlib", "zlib/libpng License",
    "CC0-1.0", "Unlicense", "The Unlicense (Unlicense)", "Public Domain",
    "HPND", "Historical Permission Notice and Disclaimer (HPND)",
    # Weak, file-level copyleft: using an unmodified MPL package does not bind foxnb's code.
    "MPL-2.0", "Mozilla Public License 2.0 (MPL 2.0)",
})

# Incompatible families, named in the error so the reason is plain.
DENIED = re.compile(r"\b(A?GPL|LGPL|SSPL|EUPL|CC-BY-NC|BUSL|Commons Clause|Proprietary)", re.I)


def _terms(expression: str) -> list[list[str]]:
    """Split an SPDX expression into OR-alternatives of AND-terms (no nesting beyond that)."""
    text = expression.strip().strip("()")
    return [[t.strip().strip("()").strip() for t in re.split(r"\s+AND\s+", alt)]
            for alt in re.split(r"\s+OR\s+", text)]


def verdict(licence: str) -> str | None:
    """``None`` when ``licence`` is allowed, else the reason it is not."""
    licence = licence.strip()
    if not licence or licence.upper() == "UNKNOWN":
        return "no licence in the package metadata"
    # A classifier list ("BSD License; MIT License") means all of them apply.
    parts = [p for p in licence.split(";") if p.strip()]
    for part in parts:
        if part.strip() in ALLOWED:  # a classifier name such as "ISC License (ISCL)"
            continue
        alternatives = _terms(part)
        if any(all(t in ALLOWED for t in alt) for alt in alternatives):
            continue
        denied = DENIED.search(part)
        if denied:
            return f"{denied.group(1)} is incompatible with BSD-3-Clause"
        return f"{part.strip()!r} is not on the allow list (.ci/licenses.py ALLOWED)"
    return None


def check(packages: list[dict[str, str]]) -> list[str]:
    """One line per package whose licence is not allowed."""
    problems = []
    for pkg in packages:
        name, licence = pkg["Name"], pkg["License"]
        reason = verdict(licence)
        if reason:
            problems.append(f"{name} {pkg.get('Version', '')}: {licence} -- {reason}")
    return problems


def main(argv: list[str]) -> int:
    packages = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    problems = check(packages)
    for line in problems:
        print(f"LICENCE NOT ALLOWED: {line}")
    if problems:
        return 1
    print(f"licences: {len(packages)} runtime dependencies, all compatible with BSD-3-Clause")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
