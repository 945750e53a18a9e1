"""foxnb.server: the health JSON and a real HTTP server for /metrics, /livez, /readyz."""

from __future__ import annotations

import json
import re
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from prometheus_client.parser import text_string_to_metric_families

from foxnb import configuration as config
from foxnb.hooks import HookRegistry
from foxnb.orchestrator import Orchestrator
from foxnb.server import health, serve
from tests.conftest import run

CHECKS = {"config", "orchestrator", "cache_dir", "breakers"}


@pytest.fixture
def orch() -> Iterator[Orchestrator]:
    o = Orchestrator(executor="inline", hooks=HookRegistry())
    yield o
    o.shutdown()


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("foxnb-serve")]


def test_all_pass_on_a_working_setup(orch: Orchestrator, cache_dir: Path) -> None:
    report = health(orchestrator=orch)
    assert report == {"status": "pass", "checks": {name: {"status": "pass"} for name in CHECKS}}
    verbose = health(verbose=True, orchestrator=orch)["checks"]
    assert verbose["cache_dir"]["path"] == str(cache_dir)
    assert verbose["orchestrator"]["accepting"] is True
    assert list(cache_dir.iterdir()) == []  # the write probe is cleaned up


def test_an_unwritable_cache_dir_fails(orch: Orchestrator, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    config.configure(cache_dir=blocker / "cache")
    try:
        report = health(verbose=True, orchestrator=orch)
    finally:
        config.configure(reset=True)
    assert report["status"] == "fail"
    assert report["checks"]["cache_dir"]["status"] == "fail"
    assert "NotADirectoryError" in report["checks"]["cache_dir"]["error"]
    assert report["checks"]["orchestrator"]["status"] == "pass"


def test_a_disabled_cache_needs_no_directory(orch: Orchestrator, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    config.configure(cache_dir=blocker, cache_enabled=False)
    try:
        assert health(orchestrator=orch)["checks"]["cache_dir"] == {"status": "pass"}
    finally:
        config.configure(reset=True)


def test_an_invalid_configuration_fails(orch: Orchestrator, cache_dir: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOXNB_MEMORY_CACHE_ENTRIES", "lots")
    monkeypatch.setattr(config, "_current", None)  # the environment is read again
    report = health(verbose=True, orchestrator=orch)
    assert report["checks"]["config"]["status"] == "fail"
    assert "FOXNB_MEMORY_CACHE_ENTRIES='lots'" in report["checks"]["config"]["error"]


def test_some_breakers_open_warn_all_open_fail(cache_dir: Path) -> None:
    o = Orchestrator(executor="inline", hooks=HookRegistry())
    o.breaker("jit").record(True)
    for _ in range(10):
        o.breaker("aot").record(False)
    report = health(verbose=True, orchestrator=o)
    assert report["status"] == "warn"
    assert report["checks"]["breakers"]["open"] == ["aot"]
    for _ in range(10):
        o.breaker("jit").record(False)
    assert health(orchestrator=o)["checks"]["breakers"] == {"status": "fail"}
    o.shutdown()


def test_a_shut_down_orchestrator_fails_and_health_never_raises(cache_dir: Path) -> None:
    o = Orchestrator(executor="inline", hooks=HookRegistry())
    o.shutdown()
    assert health(orchestrator=o)["checks"]["orchestrator"] == {"status": "fail"}

    class Broken:
        def snapshot(self) -> Any:
            raise RuntimeError("lost")

    report = health(verbose=True, orchestrator=Broken())
    assert report["status"] == "fail"
    assert report["checks"]["breakers"]["error"] == "RuntimeError: lost"


def test_the_server_answers_while_every_worker_is_busy(cache_dir: Path) -> None:
    o = Orchestrator(executor="threads", max_workers=2, hooks=HookRegistry())
    release, started = threading.Event(), threading.Semaphore(0)

    def block() -> None:
        started.release()
        release.wait(60)

    handles = [o.submit(block) for _ in range(3)]
    try:
        for _ in range(2):
            assert started.acquire(timeout=30)
        with serve(port=0, orchestrator=o) as server:
            assert server.host == "127.0.0.1" and server.port > 0
            assert server.url == f"http://127.0.0.1:{server.port}/"
            assert get(server.url + "livez") == (200, b'{"status": "pass"}')
            status, body = get(server.url + "metrics")
            values = {(s.name, tuple(s.labels.items())): s.value
                      for f in text_string_to_metric_families(body.decode())
                      for s in f.samples}
            assert status == 200
            assert values[("foxnb_tasks_running", ())] == 2
            assert values[("foxnb_queue_depth", ())] == 1
            status, body = get(server.url + "readyz?verbose")
            assert status == 200
            assert json.loads(body)["checks"]["orchestrator"]["running"] == 2
    finally:
        release.set()
        for h in handles:
            h.result(timeout=30)
        o.shutdown()


def test_readyz_is_503_after_shutdown_and_close_joins_the_thread(cache_dir: Path) -> None:
    o = Orchestrator(executor="inline", hooks=HookRegistry())
    server = serve(orchestrator=o)
    status, body = get(server.url + "readyz")
    assert (status, json.loads(body)["status"]) == (200, "pass")
    o.shutdown()
    status, body = get(server.url + "readyz")
    assert status == 503
    assert json.loads(body) == {"status": "fail", "checks": {
        "config": {"status": "pass"}, "orchestrator": {"status": "fail"},
        "cache_dir": {"status": "pass"}, "breakers": {"status": "pass"}}}
    assert server_threads()
    server.close()
    server.close()  # idempotent
    assert server.closed and not server_threads()
    with pytest.raises(OSError):
        urllib.request.urlopen(server.url + "livez", timeout=5)


def test_only_the_loopback_interface_is_bound_by_default(cache_dir: Path) -> None:
    with serve() as server:
        sock_host = server._httpd.socket.getsockname()[0]
    assert sock_host == "127.0.0.1"


def test_foxhealth_prints_the_health_json(ip: Any, capsys: pytest.CaptureFixture[str]) -> None:
    run(ip, "%foxhealth")
    report = json.loads(capsys.readouterr().out)
    assert set(report["checks"]) == CHECKS and report["status"] in ("pass", "warn")
    assert report["checks"]["config"] == {"status": "pass"}
    run(ip, "%foxhealth --verbose")
    verbose = json.loads(capsys.readouterr().out)
    assert "path" in verbose["checks"]["cache_dir"]


def test_foxserve_listens_on_the_metrics_port_setting(
    ip: Any, capsys: pytest.CaptureFixture[str],
) -> None:
    import socket

    from foxnb import configuration

    with socket.socket() as probe:  # a port free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configuration.configure(metrics_port=port)
    try:
        run(ip, "%foxserve")
        assert f"http://127.0.0.1:{port}/" in capsys.readouterr().out
    finally:
        run(ip, "%foxserve --stop")
        configuration.configure(metrics_port=None)


def test_foxserve_starts_reuses_and_stops_one_server(
    ip: Any, capsys: pytest.CaptureFixture[str],
) -> None:
    run(ip, "%foxserve")
    out = capsys.readouterr().out
    match = re.search(r"foxnb serves (http://127\.0\.0\.1:(\d+)/) \(/metrics, /livez, /readyz\)",
                      out)
    assert match, out
    url = match.group(1)
    try:
        assert get(url + "livez")[0] == 200
        run(ip, "%foxserve")
        assert f"foxnb serves {url}" in capsys.readouterr().out and len(server_threads()) == 1
    finally:
        run(ip, "%foxserve --stop")
    assert f"stopped the foxnb server at {url}" in capsys.readouterr().out
    assert not server_threads()
    run(ip, "%foxserve --stop")
    assert capsys.readouterr().out == "no foxnb server is running\n"


def test_foxserve_misuse_is_a_usage_error(ip: Any) -> None:
    with pytest.raises(UsageError, match=r"--port 70000: a port is 0 \(any free port\) to 65535"):
        ip.run_line_magic("foxserve", "--port 70000")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UsageError, match=f"cannot listen on 127.0.0.1:{port}: .*--port"):
            ip.run_line_magic("foxserve", f"--port {port}")
    with pytest.raises(UsageError, match="--stop takes no --host or --port"):
        ip.run_line_magic("foxserve", "--stop --port 1")
    assert not server_threads()


def test_metrics_are_served_after_reload_ext(ip: Any, capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(2):
        run(ip, "%reload_ext foxnb")
        run(ip, "%foxserve")
        url = re.findall(r"foxnb serves (http://\S+/)", capsys.readouterr().out)[-1]
        try:
            status, body = get(url + "metrics")
        finally:
            run(ip, "%foxserve --stop")
        assert status == 200
        assert "foxnb_tasks" in {f.name for f in text_string_to_metric_families(body.decode())}
