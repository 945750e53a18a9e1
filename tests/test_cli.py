"""The ``foxnb`` command: every command and its exit code (click's CliRunner), and real
subprocesses for ``foxnb --help`` and ``python -m foxnb``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from foxnb import configuration
from foxnb.cache import get_store
from foxnb.cli import EXIT_ENVIRONMENT, EXIT_FAILED, EXIT_OK, EXIT_USAGE, cli

KERNELS = '''\
import numpy as np


def scaled_sum(x: "float64[::1]", n: "int64") -> "float64":
    s = 0.0
    for i in range(n):
        s += x[i] * 2.0
    return s
'''

COMPARED = '''\
import numpy as np


def total(x):
    s = 0.0
    for v in x:
        s += v
    return s


def setup(n):
    return np.arange(n, dtype=np.float64)


def square(x):
    return x * x


def square_setup(n):
    return 2 ** 40  # int64 in numba: the square wraps; Python's does not
'''

BROKEN = '''\
def f(x: "float64") -> "float64":
    y = 1
    return x.foo
'''


def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False,
                              prog_name="foxnb")


@pytest.fixture
def files(tmp_path: Path) -> Path:
    for name, text in (("kernels.py", KERNELS), ("compared.py", COMPARED),
                       ("broken.py", BROKEN)):
        (tmp_path / name).write_text(text)
    return tmp_path


def _commands() -> list[list[str]]:
    found = [[]]
    for name, command in cli.commands.items():  # type: ignore[attr-defined]
        found.append([name])
        found += [[name, sub] for sub in getattr(command, "commands", {})]
    return found


@pytest.mark.parametrize("path", _commands(), ids=lambda p: " ".join(p) or "foxnb")
def test_help_everywhere(path: list[str]) -> None:
    result = invoke(*path, "--help")
    assert result.exit_code == EXIT_OK
    assert f"Usage: foxnb {' '.join(path)}".strip() in result.output


def test_foxnb_script_and_python_m_foxnb(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "foxnb"
    env = {**os.environ, "FOXNB_CACHE_DIR": str(tmp_path / "cache")}
    for command in ([str(script), "--help"], [sys.executable, "-m", "foxnb", "--help"]):
        proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "aot" in proc.stdout and "serve" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "foxnb", "cache", "--bogus"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == EXIT_USAGE


def test_fresh_process_cache_stats_answers(tmp_path: Path) -> None:
    # A fresh process whose first settings() call came from get_store() deadlocked (the
    # settings listener took the cache's lock get_store held).
    env = {**os.environ, "FOXNB_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "foxnb", "cache", "stats", "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["location"] == str(tmp_path / "cache")


def test_import_foxnb_does_not_import_the_cli() -> None:
    proc = subprocess.run([sys.executable, "-c", "import sys, foxnb; "
                           "print('foxnb.cli' in sys.modules, 'click' in sys.modules)"],
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["False", "False"]


# -- aot --------------------------------------------------------------------------------------
def test_aot_writes_library_header_and_a_main_c_that_runs(files: Path, cache_dir: Path) -> None:
    out = files / "out"
    result = invoke("aot", str(files / "kernels.py"), "-O", "2", "-o", str(out))
    assert result.exit_code == EXIT_OK, result.output
    assert {p.name for p in out.iterdir()} == {"fox_scaled_sum.so", "fox_scaled_sum.h",
                                               "main.c"}
    assert "scaled_sum(" in (out / "fox_scaled_sum.h").read_text()
    build = subprocess.run(["cc", "main.c", "./fox_scaled_sum.so", "-Wl,-rpath,$ORIGIN", "-o",
                            "main"], cwd=out, capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    run = subprocess.run(["./main"], cwd=out, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0
    assert "scaled_sum" in run.stdout


def test_aot_sig_option_names_the_export(files: Path, cache_dir: Path) -> None:
    (files / "plain.py").write_text("def twice(x):\n    return 2 * x\n")
    out = files / "o"
    result = invoke("aot", str(files / "plain.py"), "--sig", "twice:int64(int64)",
                    "--name", "mylib", "-o", str(out))
    assert result.exit_code == EXIT_OK, result.output
    assert "twice(" in (out / "mylib.h").read_text()


def test_aot_compile_error_exits_1_with_file_and_line(files: Path, cache_dir: Path) -> None:
    result = invoke("aot", str(files / "broken.py"), "-o", str(files / "out"))
    assert result.exit_code == EXIT_FAILED
    assert f"{files / 'broken.py'}:3:" in result.output
    assert "return x.foo" in result.output
    assert "nopython" not in result.output and "Traceback" not in result.output
    assert not (files / "out").exists()


@pytest.mark.parametrize(("args", "says"), [
    (["--sig", "nope:float64(float64)"], "--sig names 'nope'"),
    (["-O", "7"], "-O"),
    (["--sig", "scaled_sum"], "NAME:SIGNATURE"),
])
def test_aot_usage_errors_exit_2(files: Path, cache_dir: Path, args: list[str],
                                 says: str) -> None:
    result = invoke("aot", str(files / "kernels.py"), *args, "-o", str(files / "out"))
    assert result.exit_code == EXIT_USAGE
    assert says in result.output


def test_aot_missing_function_signature_exits_2(files: Path, cache_dir: Path) -> None:
    result = invoke("aot", str(files / "compared.py"), "-o", str(files / "out"))
    assert result.exit_code == EXIT_USAGE
    assert '--sig "total:float64(float64)"' in result.output


def test_aot_without_a_c_compiler_exits_3(files: Path, cache_dir: Path) -> None:
    result = invoke("aot", str(files / "kernels.py"), "-o", str(files / "out"),
                    env={"CC": "no-such-compiler-foxnb"})
    assert result.exit_code == EXIT_ENVIRONMENT
    assert "no C compiler: 'no-such-compiler-foxnb' is not on PATH" in result.output


# -- compare and bench --------------------------------------------------------------------------
def test_compare_prints_the_table_and_writes_csv(files: Path, cache_dir: Path) -> None:
    csv = files / "t.csv"
    result = invoke("compare", f"{files / 'compared.py'}::total", "--n", "10", "--n", "20",
                    "-s", "numba", "-s", "python", "--repeat", "1", "--csv", str(csv))
    assert result.exit_code == EXIT_OK, result.output
    assert "numba" in result.output and "python" in result.output
    lines = csv.read_text().splitlines()
    assert lines[0].startswith("strategy,n,median")
    assert len(lines) == 1 + 2 * 2


class _Plain:
    """A plugin strategy: the function as plain Python."""

    name = "plain"

    def build(self, function: Any, argtypes: tuple[Any, ...]) -> Any:
        ns = dict(function.globals)
        exec(function.source, ns)
        return ns[function.name]


def test_compare_times_a_strategy_a_plugin_added(files: Path, cache_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from foxnb import plugin

    monkeypatch.setattr(plugin, "strategy_providers", lambda: {"plain": _Plain()})
    monkeypatch.setattr(plugin, "strategy_provider", {"plain": _Plain()}.get)
    result = invoke("compare", f"{files / 'compared.py'}::total", "--n", "50", "-s", "numba",
                    "-s", "plain", "--repeat", "1")
    assert result.exit_code == EXIT_OK, result.output
    assert "plain" in result.output


def test_compare_results_that_differ_exit_1(files: Path, cache_dir: Path) -> None:
    result = invoke("compare", f"{files / 'compared.py'}::square", "-s", "numba", "-s",
                    "python", "--repeat", "1")
    assert result.exit_code == EXIT_FAILED
    assert "strategy 'python' differs from 'numba'" in result.output


@pytest.mark.parametrize(("target", "extra", "says"), [
    ("compared.py", [], "FILE.py::FUNCTION"),
    ("compared.py::nope", [], "no function 'nope'"),
    ("kernels.py::scaled_sum", [], "define setup(n)"),
    ("missing.py::f", [], "is not a file"),
    ("compared.py::total", ["-s", "fortran"], "fortran"),
])
def test_compare_usage_errors_exit_2(files: Path, target: str, extra: list[str],
                                     says: str) -> None:
    result = invoke("compare", f"{files}/{target}", *extra)
    assert result.exit_code == EXIT_USAGE
    assert says in result.output


@pytest.fixture
def bench_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "repo" / "bench"
    folder.mkdir(parents=True)
    (folder / "fast.py").write_text(
        'import sys\nprint("fast ran", "--quick" in sys.argv)\n# parser: "--quick"\n')
    (folder / "broken.py").write_text("raise SystemExit(4)\n")
    (folder / "_helper.py").write_text("raise SystemExit('a helper is not run')\n")
    return folder


def test_bench_lists_and_runs_scripts(bench_dir: Path) -> None:
    listed = invoke("bench", "--dir", str(bench_dir), "--list")
    assert listed.exit_code == EXIT_OK
    assert [Path(line).name for line in listed.output.splitlines()] == ["broken.py", "fast.py"]
    ran = invoke("bench", "--dir", str(bench_dir), "--only", "fast", "--quick")
    assert ran.exit_code == EXIT_OK
    assert "fast ran True" in ran.output
    failed = invoke("bench", "--dir", str(bench_dir))
    assert failed.exit_code == EXIT_FAILED
    assert "1 of 2 benchmark scripts failed: broken.py" in failed.output
    assert "fast ran False" in failed.output


def test_bench_finds_bench_upward_or_says_what_to_do(bench_dir: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    nested = bench_dir.parent / "src" / "deep"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    listed = invoke("bench", "--list").output.splitlines()
    assert [Path(p).parent for p in listed] == [bench_dir, bench_dir]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # Under `make test` every temporary directory is inside the checkout, whose own bench/
    # lies upward: the search must find nothing here, not run the real benchmarks.
    monkeypatch.setattr("foxnb.cli._bench_dir", lambda start: None)
    result = invoke("bench")
    assert result.exit_code == EXIT_USAGE
    assert "no bench/ directory" in result.output
    unknown = invoke("bench", "--dir", str(bench_dir), "--only", "nope")
    assert unknown.exit_code == EXIT_USAGE


def test_bench_of_a_function_compares_numba_and_jit(files: Path, cache_dir: Path) -> None:
    result = invoke("bench", f"{files / 'compared.py'}::total", "--n", "50")
    assert result.exit_code == EXIT_OK, result.output
    assert "numba" in result.output and "jit" in result.output


# -- cache --------------------------------------------------------------------------------------
def _blob(fill: str, size: int) -> None:
    get_store().put_blob("jit", fill * 64, b"x" * size)


def test_cache_ls_stats_prune_clear(cache_dir: Path) -> None:
    for fill, size in (("a", 1000), ("b", 1000), ("c", 1000)):
        _blob(fill, size)
    listed = invoke("cache", "ls", "--json")
    assert listed.exit_code == EXIT_OK
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {r["key"][:1] for r in rows} == {"a", "b", "c"} and rows[0]["namespace"] == "jit"
    stats = json.loads(invoke("cache", "stats", "--json").stdout)
    assert stats["entries"] == 3 and stats["location"] == str(cache_dir)
    assert "3 entries" in invoke("cache", "stats").output
    pruned = invoke("cache", "prune", "--max-bytes", "2.5K")
    assert pruned.exit_code == EXIT_OK
    assert "removed 1 entries" in pruned.output
    assert len(get_store().entries()) == 2
    assert invoke("cache", "prune", "--max-bytes", "lots").exit_code == EXIT_USAGE
    refused = invoke("cache", "clear", input="n\n")
    assert refused.exit_code == EXIT_FAILED  # aborted: nothing removed
    assert len(get_store().entries()) == 2
    cleared = invoke("cache", "clear", "--yes")
    assert cleared.exit_code == EXIT_OK and "removed 2 entries" in cleared.output
    assert get_store().entries() == []


@pytest.mark.parametrize("command", [["ls"], ["stats"], ["clear", "--yes"],
                                     ["prune", "--max-bytes", "0"]])
def test_cache_commands_exit_3_on_an_unusable_directory(tmp_path: Path, cache_dir: Path,
                                                        command: list[str]) -> None:
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("in the way")
    configuration.configure(cache_dir=not_a_dir)
    result = invoke("cache", *command)
    assert result.exit_code == EXIT_ENVIRONMENT
    assert "it is a file, not a directory" in result.output


# -- config and plugins -------------------------------------------------------------------------
def test_config_show_validate_schema(tmp_path: Path, cache_dir: Path) -> None:
    shown = invoke("config", "show")
    assert shown.exit_code == EXIT_OK and "cache_dir" in shown.output
    one = json.loads(invoke("config", "show", "cache_dir", "--json").stdout)
    assert one["cache_dir"]["value"] == str(cache_dir)
    wrong = invoke("config", "show", "wrkers")
    assert wrong.exit_code == EXIT_USAGE and "did you mean 'workers'" in wrong.output
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("workers: 2\n")
    bad.write_text("workers: -3\nopt_levl: 2\n")
    assert invoke("config", "validate", str(good)).exit_code == EXIT_OK
    checked = invoke("config", "validate", str(good), str(bad))
    assert checked.exit_code == EXIT_FAILED
    assert "workers=-3" in checked.output and "opt_levl" in checked.output
    schema = json.loads(invoke("config", "schema").stdout)
    assert "workers" in schema["properties"]


def test_plugins_lists_each_with_its_status(cache_dir: Path) -> None:
    result = invoke("plugins", "--json")
    from foxnb.plugin import plugins

    expected = {p.name: p.status for p in plugins()}
    got = {json.loads(line)["name"]: json.loads(line)["status"] for line in
           result.stdout.splitlines()}
    assert got == expected
    broken = any(s in ("failed", "incompatible") for s in expected.values())
    assert result.exit_code == (EXIT_FAILED if broken else EXIT_OK)


# -- serve and doctor ---------------------------------------------------------------------------
def test_serve_refuses_an_open_address_without_a_token() -> None:
    result = invoke("serve", "--host", "0.0.0.0", env={"FOXNB_SERVER_TOKEN": ""})
    assert result.exit_code == EXIT_USAGE
    assert "refusing to listen on 0.0.0.0 without a token" in result.output
    short = invoke("serve", "--host", "0.0.0.0", "--token", "abc")
    assert short.exit_code == EXIT_USAGE and "at least 16" in short.output


def test_serve_on_a_busy_port_exits_3() -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = invoke("serve", "--port", str(port))
    assert result.exit_code == EXIT_ENVIRONMENT
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


def test_serve_without_the_server_extra_exits_3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if not installed
    result = invoke("serve")
    assert result.exit_code == EXIT_ENVIRONMENT
    assert "pip install 'foxnb[server]'" in result.output


def test_doctor_reports_and_exits_0(cache_dir: Path) -> None:
    result = invoke("doctor", "--json")
    assert result.exit_code == EXIT_OK, result.output
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert {"python", "foxnb", "numba", "llvmlite", "numpy", "cpu", "c compiler",
            "cache dir", "configuration"} <= set(checks)
    assert checks["c compiler"]["status"] == "ok"
    assert checks["cache dir"]["detail"] == f"{cache_dir} is writable"
    assert "numba" in invoke("doctor").output


def test_doctor_exits_3_without_a_c_compiler_or_cache(tmp_path: Path, cache_dir: Path) -> None:
    result = invoke("doctor", env={"CC": "no-such-compiler-foxnb"})
    assert result.exit_code == EXIT_ENVIRONMENT
    assert "broken: c compiler" in result.output
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("in the way")
    configuration.configure(cache_dir=not_a_dir)
    result = invoke("doctor")
    assert result.exit_code == EXIT_ENVIRONMENT
    assert "broken: cache dir" in result.output


def test_progress_bar_only_on_a_terminal(files: Path, cache_dir: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["compare", f"{files / 'compared.py'}::total", "--n", "10", "-s", "python",
            "--repeat", "1"]
    assert "foxnb compare total" not in invoke(*args).stderr
    monkeypatch.setattr("foxnb.cli._stderr_is_tty", lambda: True)
    shown = invoke(*args)
    assert shown.exit_code == EXIT_OK
    assert "foxnb compare total" in shown.stderr


def test_aot_output_that_cannot_be_written_exits_1(files: Path, cache_dir: Path) -> None:
    blocker = files / "taken"
    blocker.write_text("a file where the directory should go")
    result = invoke("aot", str(files / "kernels.py"), "-o", str(blocker / "out"))
    assert result.exit_code == EXIT_FAILED
    assert "cannot write the library to" in result.output
