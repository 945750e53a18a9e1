"""Version matrix: the test suite against the oldest and the newest numba, llvmlite and numpy.

``oldest`` installs the lower bounds of pyproject.toml (``numba>=X`` -> ``numba==X``, the same for
llvmlite and numpy; every other package as pip resolves it with those: requirements/test.lock
cannot constrain it, its pandas needs a newer numpy) and runs the unit tests *not* marked
``slow``: the whole suite twice does not fit
CI's 15 minutes on 2 cores (see the budget in .ci/run). ``newest`` is the hash-checked test
environment of ``make test`` (requirements/test.lock: the newest releases when it was locked)
and runs every unit test; ``make test`` keeps to that one, CI (``.ci/run``) runs ``oldest`` too.

Run with ``make matrix`` (nox from requirements/nox.lock, session venvs in build/nox) or
``nox -s oldest`` / ``nox -s newest`` inside the Makefile's environment.
"""

from __future__ import annotations

import re
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
PINNED = ("numba", "llvmlite", "numpy")
TEST_LOCK = ROOT / "requirements" / "test.lock"

nox.options.envdir = str(ROOT / "build" / "nox")
nox.options.sessions = ["newest"]
nox.options.default_venv_backend = "venv"


def lower_bounds() -> list[str]:
    """``name==X`` for each of numba, llvmlite and numpy, from its ``name>=X`` in pyproject."""
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    found = {}
    for dep in deps:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9A-Za-z.]*)\s*", dep)
        if match and match[1].lower() in PINNED:
            found[match[1].lower()] = match[2]
    missing = set(PINNED) - set(found)
    if missing:
        raise SystemExit(f"pyproject.toml has no 'NAME>=X' lower bound for {sorted(missing)}")
    return [f"{name}=={found[name]}" for name in PINNED]


def _pytest(session: nox.Session, *marks: str) -> None:
    base = ROOT / "build" / "nox" / f"{session.name}-run"
    session.run("python", "-c", "import numba, llvmlite, numpy; print('versions: numba',"
                " numba.__version__, 'llvmlite', llvmlite.__version__, 'numpy',"
                " numpy.__version__)")
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={base}",
                # the browser tests are .ci/browser's (a real Chromium), not the matrix's
                "-m", " and ".join(("not browser", *marks)), "--ignore=tests/browser",
                *(session.posargs or ["tests"]),  # `nox -s oldest -- tests/test_x.py`
                env={"FOXNB_CACHE_DIR": str(base / "cache"), "IPYTHONDIR": str(base / "ipython"),
                     "JUPYTER_NO_CONFIG": "1"})


@nox.session
def oldest(session: nox.Session) -> None:
    """The lower bounds of numba, llvmlite and numpy; tests not marked slow."""
    bounds = lower_bounds()
    # setuptools (the build backend's bound): tests build an example plugin without isolation.
    session.install(*bounds, "setuptools>=77.0.3", "-e", ".[test]")
    session.run("python", "-c", "import sys; from importlib.metadata import version; "
                "want = dict(p.split('==') for p in sys.argv[1:]); "
                "got = {n: version(n) for n in want}; "
                "sys.exit(None if got == want else f'installed {got}, wanted {want}')", *bounds)
    _pytest(session, "not slow")


@nox.session
def newest(session: nox.Session) -> None:
    """The locked test environment of ``make test``; every unit test."""
    session.install("--require-hashes", "-r", str(TEST_LOCK))
    session.install("--no-deps", "--no-build-isolation", "-e", ".")
    _pytest(session)
