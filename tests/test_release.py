"""Release artifacts: the sdist and wheel ``python -m build`` makes, and the wheel at work.

The build runs once per module (``--no-isolation``: the hash-locked setuptools of the test
environment, as ``make dist`` does). The wheel is installed into a fresh venv (no system
site-packages; the runtime dependencies from requirements/runtime.lock, hash-checked, from the
local pip cache), and a notebook with ``%load_ext foxnb``, a ``%%foxjit`` and a ``%%foxaot``
cell runs there through nbclient on a kernel of that venv. Also the licence and audit checks
of .ci/ (``make licenses``, ``make audit``) on made-up inputs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import foxnb

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NAME = f"foxnb-{foxnb.__version__}"


def _run(*cmd: str | Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False,
                          timeout=600, **kw)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(sdist, wheel, build log) of the checkout."""
    out = tmp_path_factory.mktemp("dist")
    proc = _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    return out / f"{NAME}.tar.gz", out / f"{NAME}-py3-none-any.whl", log


def test_build_prints_no_deprecation_warning(dist: tuple[Path, Path, str]) -> None:
    sdist, wheel, log = dist
    assert sdist.is_file() and wheel.is_file()
    assert "deprecat" not in log.lower(), [ln for ln in log.splitlines() if "eprecat" in ln]


def test_sdist_carries_the_c_sources_and_the_licence(dist: tuple[Path, Path, str]) -> None:
    with tarfile.open(dist[0]) as tar:
        names = {n.removeprefix(f"{NAME}/") for n in tar.getnames()}
    sources = {p.relative_to(ROOT).as_posix() for ext in ("*.c", "*.h")
               for p in (ROOT / "foxnb").rglob(ext)}
    assert {"foxnb/_native/_foxcall.c", "foxnb/_native/foxnb_runtime.c"} <= sources
    assert sources <= names, sorted(sources - names)
    assert {"LICENSE", "README.md", "pyproject.toml", "foxnb/py.typed"} <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".so"))]


def test_metadata_has_the_spdx_licence_and_passes_twine_check(
        dist: tuple[Path, Path, str]) -> None:
    sdist, wheel, _ = dist
    with zipfile.ZipFile(wheel) as zf:
        meta = zf.read(f"{NAME}.dist-info/METADATA").decode()
        assert f"{NAME}.dist-info/licenses/LICENSE" in zf.namelist()
        assert {"foxnb/_native/_foxcall.c", "foxnb/_native/foxnb_runtime.c"} <= set(
            zf.namelist())
    assert "License-Expression: BSD-3-Clause" in meta.splitlines()
    assert not [ln for ln in meta.splitlines() if ln.startswith("License:")]
    proc = _run(sys.executable, "-m", "twine", "check", "--strict", sdist, wheel)
    assert proc.returncode == 0, proc.stdout + proc.stderr


NOTEBOOK_CELLS = [
    "%load_ext foxnb",
    "import sys, foxnb, numba\nprint(foxnb.__file__, numba.__file__, sys.prefix, sep='\\n')",
    "%%foxjit\ndef tri(n):\n    s = 0\n    for i in range(n):\n        s += i\n    return s",
    "print(tri(10), len(tri.signatures))",
    '%%foxaot --sig "scale:float64(float64, float64)"\ndef scale(a, b):\n    return 2.0 * a + b',
    "print(scale(1.5, 2.0))\ntry:\n    scale('x', 2.0)\nexcept TypeError as e:\n"
    "    print('TypeError', 'float64' in str(e))",
]


def test_wheel_runs_a_notebook_in_a_fresh_venv(
        dist: tuple[Path, Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=False, with_pip=False).create(env_dir)
    assert "include-system-site-packages = false" in (env_dir / "pyvenv.cfg").read_text()
    vpy = env_dir / "bin" / "python"
    pip = (sys.executable, "-m", "pip", "--python", vpy, "install", "-q",
           "--disable-pip-version-check")
    # The wheels `make` installed the test venv from (never the user's ~/.cache/pip).
    pip_env = {**os.environ, "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR",
                                                             str(ROOT / "build" / "pip-cache"))}
    for args in (("--require-hashes", "-r", ROOT / "requirements" / "runtime.lock"),
                 ("--no-deps", dist[1])):
        proc = _run(*pip, *args, env=pip_env)
        assert proc.returncode == 0, proc.stderr[-3000:]
    # The wheel's own requirements are met by what the lock installed.
    proc = _run(sys.executable, "-m", "pip", "--python", vpy, "check")
    assert proc.returncode == 0, proc.stdout

    kernels = tmp_path / "jupyter" / "kernels" / "foxnb-release"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(vpy), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "foxnb release", "language": "python"}))
    cache = tmp_path / "cache"
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("FOXNB_CACHE_DIR", str(cache))
    # The kernel builds the wheel's C sources itself, in the fresh cache.
    monkeypatch.delenv("FOXNB_NATIVE_DIR", raising=False)
    monkeypatch.delenv("PYTHONPATH", raising=False)

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS])
    NotebookClient(nb, timeout=300, kernel_name="foxnb-release",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    def text(i: int) -> str:
        outs = nb.cells[i].outputs
        assert not [o for o in outs if o.output_type == "error" or o.get("name") == "stderr"], outs
        return "".join(o.get("text", "") for o in outs)

    foxnb_file, numba_file, prefix = text(1).split()
    assert Path(prefix) == env_dir
    assert Path(foxnb_file).is_relative_to(env_dir) and Path(numba_file).is_relative_to(env_dir)
    assert text(3).split() == ["45", "1"]
    assert text(5).split() == ["5.0", "TypeError", "True"]
    assert [text(i) for i in (0, 2, 4)] == ["", "", ""]
    assert list((cache / "native").rglob("*.so")), "the wheel's C sources were not built"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / ".ci" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("licence", "allowed"), [
    ("MIT", True), ("BSD License", True), ("ISC License (ISCL)", True),
    ("BSD-2-Clause AND Apache-2.0 WITH LLVM-exception", True),
    ("Apache-2.0 OR BSD-2-Clause", True), ("GPL-3.0-or-later OR MIT", True),
    ("BSD-3-Clause AND GPL-2.0-only", False), ("GNU General Public License v3 (GPLv3)", False),
    ("AGPL-3.0", False), ("LGPL-2.1-or-later", False), ("SSPL-1.0", False),
    ("UNKNOWN", False), ("", False), ("Some Custom Licence", False),
])
def test_licence_check_allows_permissive_and_rejects_copyleft(licence: str,
                                                              allowed: bool) -> None:
    licenses = _load("licenses")
    problems = licenses.check([{"Name": "pkg", "Version": "1.0", "License": licence}])
    assert (problems == []) is allowed, problems


def test_licence_check_fails_naming_the_package(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    licenses = _load("licenses")
    report = tmp_path / "licenses.json"
    report.write_text(json.dumps([
        {"Name": "numpy", "Version": "2.0", "License": "BSD-3-Clause"},
        {"Name": "readline-ish", "Version": "8.1", "License": "GPL-3.0-only"}]))
    assert licenses.main(["licenses.py", str(report)]) == 1
    out = capsys.readouterr().out
    assert "readline-ish 8.1: GPL-3.0-only" in out and "numpy" not in out


FAKE_PIP_AUDIT = '''#!{python}
import json, sys
args = sys.argv[1:]
service, req = args[args.index("-s") + 1], open(args[args.index("-r") + 1]).read()
out = args[args.index("--output") + 1]
mode = {mode!r}
if mode == "offline" or (mode == "osv-only" and service == "pypi"):
    deps = [{{"name": "jinja2", "version": "2.10",
              "skip_reason": "Dependency not found on PyPI and could not be audited"}}]
elif "jinja2==2.10" in req:
    deps = [{{"name": "jinja2", "version": "2.10", "vulns": [{{"id": "CVE-2019-10906"}}]}}]
else:
    vulns = [{{"id": "GHSA-xxxx", "fix_versions": ["9.9"]}}] if mode == "vulnerable" else []
    deps = [{{"name": "numba", "version": "0.68.1", "vulns": vulns}}]
json.dump({{"dependencies": deps}}, open(out, "w"))
sys.exit(1 if any(d.get("vulns") for d in deps) else 0)
'''


@pytest.mark.parametrize(("mode", "status", "expected"), [
    ("offline", 0, "SKIPPED vulnerability audit: advisory data unreachable"),
    ("osv-only", 0, "audit: 1 locked packages, no known vulnerabilities (service osv)"),
    ("clean", 0, "audit: 1 locked packages, no known vulnerabilities (service pypi)"),
    ("vulnerable", 1, "VULNERABLE: numba 0.68.1: GHSA-xxxx (fixed in 9.9)"),
])
def test_audit_never_passes_silently(mode: str, status: int, expected: str, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    fake = tmp_path / "pip-audit"
    fake.write_text(FAKE_PIP_AUDIT.format(python=sys.executable, mode=mode))
    fake.chmod(0o755)
    monkeypatch.setenv("PIP_AUDIT", str(fake))
    lock = tmp_path / "test.lock"
    lock.write_text("numba==0.68.1 --hash=sha256:00\n")
    assert _load("audit").main(["audit.py", str(lock), str(tmp_path / "work")]) == status
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), lines
