"""The ``foxnb`` command: ThunderFox, benchmarks, the cache, the compile server, a doctor.

``foxnb --help`` lists the commands; every command has ``--help``. Exit codes scripts can
trust:

====  ==========================================================================
0     it worked
1     the work failed: a compile error (``FILE:LINE: ...``), a failed benchmark,
      strategies that disagree
2     usage error: a bad option or argument (click's), a missing signature
3     environment problem: no working C compiler, an unusable cache directory,
      the server extra not installed, an address that cannot be bound
====  ==========================================================================

Progress bars (stderr) are shown only on a terminal. ``python -m foxnb`` is the same
command. ``import foxnb`` does not import this module.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import click

from foxnb.errors import FoxnbCompileError, FoxnbError, FoxnbUsageError, FoxnbWarning

__all__ = ["EXIT_ENVIRONMENT", "EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "cli", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ENVIRONMENT = 0, 1, 2, 3
_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Failed(click.ClickException):
    """The work failed (exit 1)."""

    exit_code = EXIT_FAILED


class EnvironmentProblem(click.ClickException):
    """Something outside the user's input is broken (exit 3)."""

    exit_code = EXIT_ENVIRONMENT


class Size(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2
    """A byte count: ``1000``, ``500M``, ``2G``, ``1.5GiB``."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        from foxnb.configuration import parse_size  # the configuration's own rule

        try:
            return parse_size(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a size; write e.g. 1000, 500M, 2G or 1.5GiB", param, ctx)


# -- shared helpers -----------------------------------------------------------------------------
def _stderr_is_tty() -> bool:
    return sys.stderr.isatty()


@contextlib.contextmanager
def _progress(length: int, label: str) -> Iterator[Callable[[int], None]]:
    """``advance(n)`` for a click progress bar on stderr, or a no-op off a terminal."""
    if not _stderr_is_tty():
        yield lambda n: None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update


@contextlib.contextmanager
def _foxnb_warnings() -> Iterator[list[str]]:
    """Show each FoxnbWarning as one ``warning:`` line on stderr (never as an error, never
    twice); yields the messages so a command can say what went wrong."""
    seen: list[str] = []

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        text = str(message)
        if text not in seen:
            seen.append(text)
            click.echo(f"warning: {text}", err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always", FoxnbWarning)
        warnings.showwarning = show
        yield seen


def _c_compiler() -> tuple[str, str | None]:
    """The C compiler foxnb runs (``$CC`` or ``cc``) and its path, None when not found."""
    from foxnb.engines._aot.native import c_compiler

    cc = c_compiler()
    return cc, shutil.which(cc)


def _check_compiler(cc: str, path: str | None) -> str | None:
    """Why the C compiler cannot build a shared object, or None when it can."""
    import tempfile

    if path is None:
        return (f"no C compiler: {cc!r} is not on PATH; install one (e.g. apt install gcc) "
                "or set CC to its path")
    with tempfile.TemporaryDirectory(prefix="foxnb-doctor-") as tmp:
        source = Path(tmp, "probe.c")
        source.write_text("int foxnb_probe(int x) { return x + 1; }\n")
        try:
            proc = subprocess.run([path, "-shared", "-fPIC", str(source), "-o",
                                   str(Path(tmp, "probe.so"))], capture_output=True, text=True,
                                  timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"the C compiler {path} cannot run: {exc}"
        if proc.returncode:
            first = (proc.stderr.strip().splitlines() or ["no output"])[0]
            return f"the C compiler {path} failed to build a shared object: {first}"
    return None


def _store_problem() -> str | None:
    """Why the cache directory cannot be used, or None (a missing one is created later)."""
    from foxnb.cache import get_store

    store = get_store()
    with warnings.catch_warnings():  # said once below, not as a warning too
        warnings.simplefilter("ignore", FoxnbWarning)
        reason = store.unusable_reason
    if reason:
        return f"the cache directory {store.root} is unusable: {reason}"
    if store.root.exists() and not os.access(store.root, os.W_OK | os.X_OK):
        return f"the cache directory {store.root} is not writable (chmod u+rwx it)"
    return None


def _import_file(path: Path) -> ModuleType:
    """Import a Python file as a module of its own (its functions keep their source)."""
    name = "foxnb_cli_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise click.BadParameter(f"{path} cannot be imported as Python", param_hint="FILE")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise Failed(f"{path}:{exc.lineno}: SyntaxError: {exc.msg}") from None
    except Exception as exc:
        raise Failed(f"{path}:{_line_in(exc, str(path))}: {type(exc).__name__}: {exc}") from None
    return module


def _line_in(exc: BaseException, filename: str) -> str:
    """The last line of ``filename`` in ``exc``'s traceback ('?' when it is not there)."""
    tb, line = exc.__traceback__, "?"
    while tb is not None:
        if tb.tb_frame.f_code.co_filename in (filename, os.path.abspath(filename)):
            line = str(tb.tb_lineno)
        tb = tb.tb_next
    return line


def _target(value: str) -> tuple[Path, str]:
    """``FILE.py::func`` -> (path, function name)."""
    file, sep, func = value.rpartition("::")
    if not sep or not file or not func.isidentifier():
        raise click.BadParameter(f"{value!r}: write FILE.py::FUNCTION, e.g. kernels.py::pairsum",
                                 param_hint="TARGET")
    path = Path(file)
    if not path.is_file():
        raise click.BadParameter(f"{file} is not a file", param_hint="TARGET")
    return path, func


def _compile_error(path: Path, exc: FoxnbCompileError) -> Failed:
    """A compile error as ``FILE:LINE: message`` (cell lines are file lines here)."""
    where = f"{path}:{exc.line}" if exc.line is not None else str(path)
    return Failed(f"{where}: {str(exc).replace('cell line', 'line')}")


# -- the group ----------------------------------------------------------------------------------
@click.group(context_settings=_CONTEXT)
@click.version_option(package_name="foxnb", prog_name="foxnb")
def cli() -> None:
    """foxnb: compile numeric Python ahead of time, benchmark it, manage its cache, serve
    compiles over HTTP.

    Exit codes: 0 ok, 1 the work failed, 2 usage error, 3 environment problem (no C
    compiler, unusable cache directory, server extra missing).
    """


# -- aot ----------------------------------------------------------------------------------------
@cli.command(context_settings=_CONTEXT)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--sig", "sigs", multiple=True, metavar="NAME:SIG",
              help='Export NAME with this numba signature, e.g. "f:float64(float64[::1], '
                   'int64)" (repeatable); else string annotations are read.')
@click.option("-O", "opt_level", type=click.IntRange(0, 3), default=3, show_default=True,
              help="LLVM optimisation level.")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True,
              help="Directory for NAME.so, NAME.h and main.c (created).")
@click.option("--name", help="Library name (default fox_<functions>).")
@click.option("--error-model", type=click.Choice(["numpy", "python"]), default="numpy",
              show_default=True, help="numpy: x/0 gives inf/nan (no exception path).")
@click.option("--fastmath", is_flag=True, help="LLVM fast-math flags.")
@click.option("--boundscheck", is_flag=True, help="IndexError on out-of-bounds indexing.")
@click.option("-f", "--force", is_flag=True, help="Rebuild even if the library is cached.")
@click.option("-v", "--verbose", is_flag=True, help="Report phases, signatures, inlining.")
def aot(file: Path, sigs: tuple[str, ...], opt_level: int, output: Path, name: str | None,
        error_model: str, fastmath: bool, boundscheck: bool, force: bool,
        verbose: bool) -> None:
    """Compile the functions of FILE ahead of time (ThunderFox): a shared library with a C
    ABI, its header and an example main.c, written to --output.

    FILE runs as a %%foxaot cell would: its statements run in Python (imports, constants),
    its functions with a signature are exported, the functions they call are compiled in.
    """
    from foxnb.cells import compile_aot_cell
    from foxnb.engines.aot import AotOptions, export

    cc, path = _c_compiler()
    if path is None:
        raise EnvironmentProblem(_check_compiler(cc, path) or "no C compiler")
    options = AotOptions(opt_level=opt_level, error_model=error_model, fastmath=fastmath,
                         boundscheck=boundscheck, name=name, sigs=sigs, force=force)
    ns: dict[str, Any] = {"__name__": "__foxnb_aot__", "__file__": str(file)}
    with _foxnb_warnings() as said, _progress(2, f"foxnb aot {file.name}") as advance:
        try:
            result = compile_aot_cell(file.read_text(), ns, options=options)
        except SyntaxError as exc:
            raise Failed(f"{file}:{exc.lineno}: SyntaxError: {exc.msg}") from None
        except FoxnbCompileError as exc:
            raise _compile_error(file, exc) from None
        except FoxnbUsageError as exc:
            raise click.UsageError(f"{file}: {str(exc).removeprefix('%%foxaot: ')}") from None
        except FoxnbError as exc:
            raise Failed(f"{file}: {exc}") from None
        except Exception as exc:  # the file's own statements failed
            raise Failed(f"{file}: {type(exc).__name__}: {exc}") from None
        advance(1)
        lib = result.library
        if lib is None:  # the toolchain failed: the cell ran with the JIT engine instead
            raise EnvironmentProblem("no library was built: " + (said[-1] if said else
                                     "the AOT toolchain failed"))
        try:
            export(lib, output)
        except OSError as exc:
            raise Failed(f"cannot write the library to {output}: {exc}") from None
        advance(1)
    if verbose:
        click.echo(lib.report())
    for written in (f"{lib.name}.so", f"{lib.name}.h", "main.c"):
        click.echo(str(output / written))


# -- compare and bench --------------------------------------------------------------------------
class _CountingOrchestrator:
    """Runs ``foxnb.compare``'s per-size tasks on foxnb's orchestrator, advancing a bar."""

    def __init__(self, advance: Callable[[int], None]) -> None:
        from foxnb.orchestrator import get_orchestrator

        self._orchestrator = get_orchestrator()
        self._advance = advance

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return self._orchestrator.run(fn, *args, **kwargs)
        finally:
            self._advance(1)


def _compare(target: str, sizes: Sequence[int], setup: str | None, strategies: Sequence[str],
             repeat: int, tolerance: float, check: bool) -> Any:
    """Run ``foxnb.compare`` on ``FILE.py::func``; errors as exit codes."""
    from foxnb import plugin
    from foxnb.comparison import STRATEGIES, ComparisonError, compare

    known = [*STRATEGIES, *plugin.strategy_providers()]
    unknown = [s for s in strategies if s not in known]
    if unknown:  # before the user's file is imported
        raise click.BadParameter(f"{', '.join(map(repr, unknown))} is not a strategy; choose "
                                 f"from {', '.join(known)}", param_hint="'-s' / '--strategy'")
    path, func_name = _target(target)
    module = _import_file(path)
    func = getattr(module, func_name, None)
    if not callable(func):
        raise click.BadParameter(f"{path} defines no function {func_name!r}",
                                 param_hint="TARGET")
    setup_name = setup or next((n for n in (f"{func_name}_setup", "setup")
                                if callable(getattr(module, n, None))), None)
    make_args = getattr(module, setup_name, None) if setup_name else None
    if not callable(make_args):
        raise click.UsageError(f"{path} has no setup function: define setup(n) returning the "
                               f"arguments of {func_name} for size n, or name one with --setup")
    with _foxnb_warnings(), _progress(len(sizes), f"foxnb compare {func_name}") as advance:
        try:
            return compare(func, make_args, sizes, strategies=strategies, repeat=repeat,
                           tolerance=tolerance, equality_check=check, progress=False,
                           orchestrator=_CountingOrchestrator(advance))
        except ComparisonError as exc:
            raise Failed(str(exc)) from None
        except FoxnbCompileError as exc:
            raise _compile_error(path, exc) from None
        except FoxnbUsageError as exc:
            raise click.UsageError(str(exc)) from None
        except Exception as exc:  # the user's function or setup raised
            raise Failed(f"{path}:{_line_in(exc, str(path.resolve()))}: "
                         f"{type(exc).__name__}: {exc}") from None


@cli.command(context_settings=_CONTEXT)
@click.argument("target", metavar="FILE.py::FUNC")
@click.option("--n", "sizes", type=click.IntRange(min=0), multiple=True, default=(1000,),
              show_default=True, help="A size passed to the setup function (repeatable).")
@click.option("--setup", help="Function of FILE making the arguments for size n "
                              "(default: FUNC_setup, else setup).")
@click.option("-s", "--strategy", "strategies", multiple=True,
              help="Strategy to time (repeatable; default numba, python, jit, aot; plugins "
                   "add more: foxnb plugins).")
@click.option("--repeat", type=click.IntRange(min=1), default=15, show_default=True,
              help="Rounds of the rotated timing.")
@click.option("--tolerance", type=click.FloatRange(min=0), default=0.0,
              help="Relative difference the equality check allows.")
@click.option("--no-check", is_flag=True, help="Skip the equality check.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the table as CSV.")
def compare(target: str, sizes: tuple[int, ...], setup: str | None,
            strategies: tuple[str, ...], repeat: int, tolerance: float, no_check: bool,
            csv_path: Path | None) -> None:
    """Time FUNC of FILE under several strategies (foxnb.compare): results are checked equal
    first (exit 1 if not), then timed per size; prints median seconds per call and the
    speedup over the baseline (numba when timed)."""
    chosen = strategies or ("numba", "python", "jit", "aot")
    result = _compare(target, sizes, setup, chosen, repeat, tolerance, not no_check)
    click.echo(repr(result))
    if csv_path is not None:
        result.df.to_csv(csv_path, index=False)


def _bench_dir(start: Path) -> Path | None:
    """The nearest ``bench/`` with scripts, from ``start`` upward."""
    for folder in (start, *start.parents):
        candidate = folder / "bench"
        if candidate.is_dir() and _bench_scripts(candidate):
            return candidate
    return None


def _bench_scripts(folder: Path) -> list[Path]:
    """The runnable scripts of a bench directory (``_helpers.py`` are not)."""
    return sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))


@cli.command(context_settings=_CONTEXT)
@click.argument("target", required=False, metavar="[FILE.py::FUNC]")
@click.option("--dir", "folder", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="The bench directory (default: the nearest bench/ upward).")
@click.option("--only", multiple=True, metavar="NAME",
              help="Run only this script (e.g. jit or jit.py; repeatable).")
@click.option("--quick", is_flag=True, help="Pass --quick to the scripts that take it.")
@click.option("--list", "list_only", is_flag=True, help="List the scripts and exit.")
@click.option("--n", "sizes", type=click.IntRange(min=0), multiple=True, default=(1000,),
              show_default=True, help="With FILE.py::FUNC: a size for setup(n).")
@click.option("--setup", help="With FILE.py::FUNC: the setup function.")
def bench(target: str | None, folder: Path | None, only: tuple[str, ...], quick: bool,
          list_only: bool, sizes: tuple[int, ...], setup: str | None) -> None:
    """Run the repository's benchmark scripts (bench/*.py), or, given FILE.py::FUNC, a small
    built-in comparison of FUNC: numba against %%foxjit.

    Each script runs in its own process with this Python; a script that fails (non-zero
    exit) makes the command exit 1 after the others ran.
    """
    if target is not None:
        result = _compare(target, sizes, setup, ("numba", "jit"), 5, 0.0, True)
        click.echo(repr(result))
        return
    where = folder or _bench_dir(Path.cwd())
    if where is None:
        raise click.UsageError(f"no bench/ directory with scripts from {Path.cwd()} upward; "
                               "give --dir, or FILE.py::FUNC for a built-in comparison")
    scripts = _bench_scripts(where)
    wanted = {o.removesuffix(".py") for o in only}
    unknown = wanted - {s.stem for s in scripts}
    if unknown:
        raise click.BadParameter(f"no script {', '.join(sorted(unknown))} in {where} (it has "
                                 f"{', '.join(s.stem for s in scripts)})", param_hint="--only")
    scripts = [s for s in scripts if not wanted or s.stem in wanted]
    if list_only:
        for script in scripts:
            click.echo(str(script))
        return
    failed: list[str] = []
    with _progress(len(scripts), "foxnb bench") as advance:
        for script in scripts:
            args = [sys.executable, str(script)]
            if quick and '"--quick"' in script.read_text():
                args.append("--quick")
            click.echo(f"== {script.name}")
            start = time.perf_counter()
            proc = subprocess.run(args, capture_output=True, text=True, cwd=where.parent)
            click.echo(proc.stdout, nl=False)
            if proc.returncode:
                failed.append(script.name)
                click.echo(proc.stderr, nl=False, err=True)
            click.echo(f"== {script.name}: {'ok' if not proc.returncode else 'FAILED'} "
                       f"({time.perf_counter() - start:.1f} s)")
            advance(1)
    if failed:
        raise Failed(f"{len(failed)} of {len(scripts)} benchmark scripts failed: "
                     f"{', '.join(failed)}")


# -- cache --------------------------------------------------------------------------------------
@cli.group(context_settings=_CONTEXT)
def cache() -> None:
    """foxnb's on-disk cache (FOXNB_CACHE_DIR, else the user cache directory)."""


def _usable_store() -> Any:
    from foxnb.cache import get_store

    problem = _store_problem()
    if problem is not None:
        raise EnvironmentProblem(problem)
    return get_store()


@cache.command("ls", context_settings=_CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per entry.")
def cache_ls(as_json: bool) -> None:
    """List the entries: namespace, key, bytes, last use (oldest first)."""
    store = _usable_store()
    rows = []
    for path, size, used in sorted(store.entries(), key=lambda e: e[2]):
        rows.append({"namespace": path.parent.parent.name, "key": path.name.removesuffix(".blob"),
                     "bytes": size, "last_used": time.strftime("%Y-%m-%dT%H:%M:%S",
                                                               time.localtime(used))})
    for row in rows:
        click.echo(json.dumps(row) if as_json else
                   f"{row['namespace']:<6} {row['key'][:16]}  {row['bytes']:>10}  "
                   f"{row['last_used']}")
    if not as_json:
        click.echo(f"{len(rows)} entries, {sum(r['bytes'] for r in rows)} bytes in "
                   f"{store.root}", err=True)


@cache.command("stats", context_settings=_CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="As a JSON object.")
def cache_stats(as_json: bool) -> None:
    """Entries and bytes on disk, where the cache is."""
    from foxnb.cache import cache_stats as stats

    _usable_store()
    found = stats()
    click.echo(json.dumps(found._asdict()) if as_json else str(found))


@cache.command("clear", context_settings=_CONTEXT)
@click.option("-y", "--yes", is_flag=True, help="Do not ask.")
def cache_clear(yes: bool) -> None:
    """Remove every entry (compiled code is rebuilt when next needed)."""
    store = _usable_store()
    entries = len(store.entries())
    if not yes:
        click.confirm(f"remove {entries} entries from {store.root}?", abort=True)
    store.clear()
    click.echo(f"removed {entries} entries from {store.root}")


@cache.command("prune", context_settings=_CONTEXT)
@click.option("--max-bytes", type=Size(), required=True,
              help="Keep at most this much (e.g. 500M, 2G); least recently used go first.")
def cache_prune(max_bytes: int) -> None:
    """Remove least recently used entries until the cache holds at most --max-bytes
    (entries a running process holds are kept)."""
    store = _usable_store()
    removed = store.prune(max_bytes)
    left = sum(e[1] for e in store.entries())
    click.echo(f"removed {removed} entries; {left} bytes left in {store.root}")
    if left > max_bytes:
        click.echo(f"warning: {left} bytes are still above {max_bytes}: the rest is in use "
                   "by running processes", err=True)


# -- config and plugins -------------------------------------------------------------------------
@cli.group("config", context_settings=_CONTEXT)
def config_group() -> None:
    """foxnb's configuration: the effective values and their sources, file checks, the
    JSON Schema (see foxnb.configuration for the order of the sources)."""


@config_group.command("show", context_settings=_CONTEXT)
@click.argument("key", required=False)
@click.option("--json", "as_json", is_flag=True, help="As {knob: {value, source}}.")
def config_show(key: str | None, as_json: bool) -> None:
    """Every knob with its value and where the value came from (or only KEY)."""
    from foxnb import configuration

    with _foxnb_warnings():
        current = configuration.config()
    values = current.as_dict()
    if key is not None:
        try:
            source = current.source(key)
        except KeyError as exc:
            raise click.BadParameter(str(exc.args[0]), param_hint="KEY") from None
        values = {key: values[key]}
    if as_json:
        shown = {k: {"value": v, "source": current.source(k)} for k, v in values.items()}
        click.echo(json.dumps(shown, indent=1, default=str))
    elif key is not None:
        click.echo(f"{key} = {values[key]!r}  ({source})")
    else:
        click.echo(str(current))


@config_group.command("validate", context_settings=_CONTEXT)
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def config_validate(files: tuple[Path, ...]) -> None:
    """Check configuration FILES (default: the project file found from here upward and the
    user file) without applying them; exit 1 when one has a problem."""
    from foxnb import configuration

    chosen = list(files) or [f for f in (configuration.project_file(),
                                         configuration.user_file()) if f is not None]
    if not chosen:
        click.echo("no configuration file found (foxnb.yaml, foxnb.json or [tool.foxnb] in "
                   "pyproject.toml from here upward; or the user file)")
        return
    bad = 0
    for path in chosen:
        problems = configuration.validate_file(path)
        bad += bool(problems)
        if not problems:
            click.echo(f"ok {path}")
        for problem in problems:
            click.echo(str(problem), err=True)
    if bad:
        raise Failed(f"{bad} of {len(chosen)} configuration files have problems")


@config_group.command("schema", context_settings=_CONTEXT)
def config_schema() -> None:
    """The JSON Schema of the configuration (plugins' sections included), for editors."""
    from foxnb import configuration

    with _foxnb_warnings():
        click.echo(json.dumps(configuration.schema(), indent=2))


def _plugin_rows() -> list[Any]:
    from foxnb.plugin import plugins

    with _foxnb_warnings():
        return list(plugins())


@cli.command(context_settings=_CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per plugin.")
def plugins(as_json: bool) -> None:
    """The installed plugins (entry points foxnb.plugins) and their status: loaded,
    disabled, incompatible or failed with the reason. Exit 1 when one failed or is
    incompatible."""
    from foxnb.plugin import PluginList

    rows = _plugin_rows()
    if as_json:
        for row in rows:
            click.echo(json.dumps(row._asdict()))
    else:
        click.echo(str(PluginList(rows)))
    broken = [p.name for p in rows if p.status in ("failed", "incompatible")]
    if broken:
        raise Failed(f"plugins not working: {', '.join(broken)}")


# -- serve --------------------------------------------------------------------------------------
@cli.command(context_settings=_CONTEXT)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs --token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option("--token", envvar="FOXNB_SERVER_TOKEN", show_envvar=True,
              help="Bearer token clients must send (at least 16 characters).")
@click.option("--max-body", type=Size(), default="1M", show_default=True,
              help="Largest request body (413 above).")
@click.option("--max-builds", type=click.IntRange(min=1), default=8, show_default=True,
              help="Builds queued or running at once (429 above).")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Threads that build.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
def serve(host: str, port: int, token: str | None, max_body: int, max_builds: int,
          workers: int, log_level: str) -> None:
    """Run the REST compile server (FastAPI + uvicorn) until interrupted: POST /cells,
    GET /tasks/{id}, GET /artifacts/{key}/{file}, /metrics, /livez, /readyz; the OpenAPI
    schema at /openapi.json, docs at /docs.

    The server runs the Python of the cells it is sent: serve trusted clients only.
    """
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise EnvironmentProblem(f"the compile server needs FastAPI and uvicorn ({exc}); "
                                 "install them with: pip install 'foxnb[server]'") from None
    from foxnb.rest.runner import run
    from foxnb.rest.service import ServerSettings

    settings = ServerSettings(host=host, port=port, token=token, max_body_bytes=max_body,
                              max_builds=max_builds, workers=workers)

    def ready(url: str) -> None:
        click.echo(f"foxnb compile server on {url} (docs: {url}/docs); Ctrl-C stops it",
                   err=True)

    try:
        run(settings, log_level=log_level, on_ready=ready)
    except FoxnbUsageError as exc:
        raise click.UsageError(str(exc)) from None
    except OSError as exc:
        raise EnvironmentProblem(f"cannot listen on {host}:{port}: {exc}") from None


# -- doctor -------------------------------------------------------------------------------------
def _version(module: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu() -> str:
    import llvmlite.binding as llvm

    features = llvm.get_host_cpu_features()
    wanted = ("sse4.2", "avx", "avx2", "fma", "avx512f", "neon", "sve")
    present = [f for f in wanted if features.get(f)]
    return f"{llvm.get_host_cpu_name()} ({', '.join(present) or 'no SIMD extensions found'})"


def _doctor_checks() -> list[dict[str, Any]]:
    """Each check: name, status (ok, warn, fail), detail, and whether foxnb needs it."""
    checks: list[dict[str, Any]] = []

    def add(name: str, status: str, detail: str, required: bool = True) -> None:
        checks.append({"name": name, "status": status, "detail": detail,
                       "required": required})

    add("python", "ok", sys.version.split()[0] + f" ({sys.executable})")
    for package in ("foxnb", "numba", "llvmlite", "numpy"):
        version = _version(package)
        add(package, "fail" if version == "not installed" else "ok", version)
    try:
        add("cpu", "ok", _cpu(), required=False)
    except Exception as exc:
        add("cpu", "warn", f"llvmlite cannot describe the CPU: {exc}", required=False)
    cc, path = _c_compiler()
    problem = _check_compiler(cc, path)
    add("c compiler", "fail" if problem else "ok", problem or f"{path} builds shared objects")
    from foxnb.server import health

    report = health(verbose=True)["checks"]
    cache_check = report["cache_dir"]
    store = _store_problem()
    if cache_check["status"] != "pass" or store:
        add("cache dir", "fail", store or str(cache_check.get("error", cache_check)))
    else:
        add("cache dir", "ok", f"{cache_check.get('path', 'disabled')} is writable")
    add("configuration", "ok" if report["config"]["status"] == "pass" else "fail",
        str(report["config"].get("error", "valid")))
    try:
        for p in _plugin_rows():  # a plugin is optional: a broken one is a warning
            add(f"plugin {p.name}", "warn" if p.status in ("failed", "incompatible") else "ok",
                f"{p.status}{': ' + p.reason if p.reason else ''}", required=False)
    except Exception as exc:
        add("plugins", "warn", f"cannot list plugins: {exc}", required=False)
    return checks


@cli.command(context_settings=_CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="As a JSON list of checks.")
def doctor(as_json: bool) -> None:
    """Check the installation: versions, the C compiler (found and working), the cache
    directory (writable), the CPU's features, the configuration, the plugins. Exit 3 if
    something foxnb needs is broken (a broken plugin is a warning)."""
    with _foxnb_warnings():
        checks = _doctor_checks()
    if as_json:
        click.echo(json.dumps(checks, indent=1))
    else:
        width = max(len(c["name"]) for c in checks)
        for c in checks:
            click.echo(f"{c['status']:<4}  {c['name']:<{width}}  {c['detail']}")
    broken = [c["name"] for c in checks if c["status"] == "fail" and c["required"]]
    if broken:
        raise EnvironmentProblem(f"broken: {', '.join(broken)}")


def main(argv: Sequence[str] | None = None) -> None:
    """Run the ``foxnb`` command (exits with its exit code)."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="foxnb")
