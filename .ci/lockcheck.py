"""Are the lock files in step with pyproject.toml? (run before ``make test`` installs from them)

requirements/test.lock must pin every runtime dependency, every requirement of the ``test``
extra and the build backend at a version the specifier allows; requirements/runtime.lock the
runtime dependencies. A requirement added to pyproject.toml without ``make lock`` would
otherwise show up as an ImportError somewhere in the tests. Offline, standard library plus
``packaging`` (pip's copy where the venv has no other).

Usage: ``python .ci/lockcheck.py``; exit status 1 names each requirement and the fix.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # a fresh venv: pip's vendored copy
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]
    from pip._vendor.packaging.utils import canonicalize_name  # type: ignore[no-redef]

try:
    import tomllib
except ImportError:  # Python 3.10
    from pip._vendor import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]


def pins(lock: Path) -> dict[str, str]:
    """name -> pinned version of a hash-locked requirements file."""
    found = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)",
                       lock.read_text(encoding="utf-8"), re.M)
    return {canonicalize_name(name): version for name, version in found}


def stale(requirements: list[str], lock: Path) -> list[str]:
    """The requirements ``lock`` does not satisfy, one line each."""
    pinned = pins(lock)
    problems = []
    for text in requirements:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        version = pinned.get(canonicalize_name(req.name))
        if version is None:
            problems.append(f"{lock.relative_to(ROOT)}: {text} is not pinned")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{lock.relative_to(ROOT)}: {text} but {req.name}=={version}")
    return problems


def main() -> int:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    runtime = project["project"]["dependencies"]
    test = runtime + project["project"]["optional-dependencies"]["test"]
    test += project["build-system"]["requires"]
    problems = stale(test, ROOT / "requirements" / "test.lock")
    problems += stale(runtime, ROOT / "requirements" / "runtime.lock")
    for line in problems:
        print(f"LOCK OUT OF DATE: {line}")
    if problems:
        print("pyproject.toml changed since the locks were made: run `make lock` and commit "
              "requirements/*.lock")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
