"""The REST compile server on loopback: uvicorn in a thread on port 0, httpx as the client."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from foxnb.errors import FoxnbUsageError  # noqa: E402
from foxnb.rest import BuildService, CellSpec, ServerSettings, create_app, start  # noqa: E402
from foxnb.rest.service import check_bind, is_loopback  # noqa: E402

ADD = "def add(x: 'float64', y: 'float64') -> 'float64':\n    return x + y\n"
TOKEN = "t0ken-for-the-tests-0123456789"


class Server:
    """A running server, its client and its build service."""

    def __init__(self, settings: ServerSettings,
                 build: Callable[[CellSpec], Mapping[str, Any]] | None = None) -> None:
        self.service = (BuildService(settings) if build is None
                        else BuildService(settings, build=build))
        self.running = start(settings, app=create_app(settings, service=self.service))
        headers = {"Authorization": f"Bearer {settings.token}"} if settings.token else {}
        self.client = httpx.Client(base_url=self.running.url, headers=headers, timeout=120)

    def close(self) -> None:
        self.client.close()
        self.running.close()
        self.service.close()

    def wait(self, task_id: str) -> dict[str, Any]:
        """The task's status once it has finished (the handle's own wait, no polling)."""
        with self.service._lock:
            handle = self.service._by_id[task_id].handle
        handle.exception(timeout=120)
        status: dict[str, Any] = self.client.get(f"/tasks/{task_id}").json()
        return status


@pytest.fixture
def make_server(cache_dir: Path) -> Iterator[Callable[..., Server]]:
    made: list[Server] = []

    def make(build: Callable[[CellSpec], Mapping[str, Any]] | None = None,
             **settings: Any) -> Server:
        server = Server(ServerSettings(port=0, **settings), build)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


class Gate:
    """A build that waits for ``release()`` and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.started = threading.Event()
        self._open = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, spec: CellSpec) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
        self.started.set()
        self._open.wait(60)
        return {"engine": spec.engine, "compiled": {}}

    def release(self) -> None:
        self._open.set()


def test_aot_cell_built_then_library_and_header_downloaded(make_server: Callable[..., Server],
                                                           cache_dir: Path) -> None:
    server = make_server()
    r = server.client.post("/cells", json={"source": ADD})
    assert r.status_code == 202
    accepted = r.json()
    assert accepted["deduplicated"] is False
    status = server.wait(accepted["task_id"])
    assert status["state"] == "done"
    assert status["attempts"][0]["outcome"] == "ok"
    result = status["result"]
    assert result["signatures"] == {"add": "add(float64, float64) -> float64"}
    files = result["files"]
    assert set(files) == {"fox_add.so", "fox_add.h"}
    stored = next((cache_dir / "aot").glob(f"*/{result['key']}"))
    for name, info in files.items():
        got = server.client.get(info["url"])
        assert got.status_code == 200
        assert got.headers["x-checksum-sha256"] == info["sha256"]
        assert hashlib.sha256(got.content).hexdigest() == info["sha256"]
        assert got.content == (stored / name).read_bytes()
    header = server.client.get(files["fox_add.h"]["url"]).text
    assert "add(" in header
    etag = server.client.get(files["fox_add.so"]["url"]).headers["etag"]
    again = server.client.get(files["fox_add.so"]["url"], headers={"If-None-Match": etag})
    assert again.status_code == 304


def test_artifacts_of_a_build_from_another_process_are_served_from_the_store(
        make_server: Callable[..., Server]) -> None:
    first = make_server()
    status = first.wait(first.client.post("/cells", json={"source": ADD}).json()["task_id"])
    url = status["result"]["files"]["fox_add.so"]["url"]
    second = make_server()  # knows nothing of the build: reads the verified cache entry
    got = second.client.get(url)
    assert got.status_code == 200
    assert got.headers["x-checksum-sha256"] == status["result"]["files"]["fox_add.so"]["sha256"]


def test_compile_error_fails_the_task_naming_the_cell_line(
        make_server: Callable[..., Server]) -> None:
    server = make_server()
    source = "def f(x: 'float64') -> 'float64':\n    y = 1\n    return x.foo\n"
    status = server.wait(server.client.post("/cells", json={"source": source}).json()["task_id"])
    assert status["state"] == "failed"
    assert "cell line 3" in status["error"]
    assert "x.foo" in status["error"]
    assert "nopython" not in status["error"]
    assert status["result"] is None


def test_missing_signature_fails_the_task_with_the_fix(make_server: Callable[..., Server]) -> None:
    server = make_server()
    status = server.wait(server.client.post(
        "/cells", json={"source": "def f(x):\n    return x\n"}).json()["task_id"])
    assert status["state"] == "failed"
    assert "f:float64(float64)" in status["error"]


def test_jit_cell_compiles_each_signature_or_reports_the_error(
        make_server: Callable[..., Server]) -> None:
    server = make_server()
    ok = server.wait(server.client.post("/cells", json={
        "source": "def sq(x):\n    return x * x\n", "engine": "jit",
        "signatures": ["sq:float64(float64)", "sq:int64(int64)"]}).json()["task_id"])
    assert ok["state"] == "done"
    assert ok["result"] == {"engine": "jit",
                            "compiled": {"sq": ["float64(float64)", "int64(int64)"]}}
    bad = server.wait(server.client.post("/cells", json={
        "source": "def g(x):\n    return x.foo\n", "engine": "jit",
        "signatures": ["g:float64(float64)"]}).json()["task_id"])
    assert bad["state"] == "failed"
    assert "cell line 2" in bad["error"] and "foo" in bad["error"]
    assert "During:" not in bad["error"]


@pytest.mark.parametrize(("body", "field", "fix"), [
    ({"source": ADD, "engine": "jat"}, "engine", '"aot"'),
    ({"source": ADD, "options": {"opt_level": 7}}, "options.opt_level", "0 to 3"),
    ({"source": ADD, "options": {"error_model": "c"}}, "options.error_model", '"numpy"'),
    ({"source": ADD, "signatures": ["add-float64"]}, "signatures.0", "NAME:SIGNATURE"),
    ({"source": ADD, "colour": "red"}, "colour", "source, engine, signatures, options"),
    ({"engine": "aot"}, "source", "Python source"),
    ({"source": ""}, "source", "Python source"),
    ({"source": "def f(:\n"}, "source", "valid Python"),
    ({"source": ADD, "engine": "jit"}, "signatures", "NAME:SIGNATURE"),
])
def test_bad_input_is_422_naming_the_field_and_the_fix(
        make_server: Callable[..., Server], body: dict[str, Any], field: str, fix: str) -> None:
    server = make_server()
    r = server.client.post("/cells", json=body)
    assert r.status_code == 422
    error = r.json()
    assert error["errors"][0]["field"] == field
    assert fix in error["errors"][0]["fix"]
    assert field in error["error"]
    assert server.service.pending() == 0  # nothing was started


def test_a_body_that_is_not_json_is_422_on_body(make_server: Callable[..., Server]) -> None:
    r = make_server().client.post("/cells", content=b"{not json",
                                  headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "body"


def test_unknown_task_and_artifact_are_404_json(make_server: Callable[..., Server]) -> None:
    server = make_server()
    r = server.client.get("/tasks/t-999999")
    assert r.status_code == 404
    assert r.json()["errors"][0]["field"] == "task_id"
    for url in (f"/artifacts/{'a' * 64}/lib.so", "/artifacts/notakey/lib.so",
                f"/artifacts/{'a' * 64}/..%2F..%2Fetc%2Fpasswd", f"/artifacts/{'a' * 64}/x.py"):
        r = server.client.get(url)
        assert r.status_code == 404, url
        assert "error" in r.json()


def test_body_over_the_limit_is_413_declared_or_streamed(
        make_server: Callable[..., Server]) -> None:
    server = make_server(max_body_bytes=2000)
    big = {"source": "x = 1\n" * 1000}
    r = server.client.post("/cells", json=big)
    assert r.status_code == 413
    assert r.json()["errors"][0]["field"] == "body"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server counts what it reads
        yield b'{"source": "'
        for _ in range(100):
            yield b"x = 1\\n" * 10
        yield b'"}'

    r = server.client.post("/cells", content=chunks(),
                           headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert server.service.pending() == 0


def test_builds_over_the_limit_get_429_until_one_finishes(
        make_server: Callable[..., Server]) -> None:
    gate = Gate()
    server = make_server(build=gate, max_builds=1)
    first = server.client.post("/cells", json={"source": ADD})
    assert first.status_code == 202
    other = {"source": ADD + "\n# another cell\n"}
    r = server.client.post("/cells", json=other)
    assert r.status_code == 429
    assert r.headers["retry-after"] == "1"
    assert "limit is 1" in r.json()["error"]
    same = server.client.post("/cells", json={"source": ADD})  # joining is not a new build
    assert same.status_code == 202 and same.json()["deduplicated"] is True
    gate.release()
    assert server.wait(first.json()["task_id"])["state"] == "done"
    assert server.client.post("/cells", json=other).status_code == 202


def test_concurrent_identical_submissions_share_one_build(
        make_server: Callable[..., Server]) -> None:
    gate = Gate()
    server = make_server(build=gate)
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: server.client.post("/cells", json={"source": ADD}),
                                range(8)))
    assert {r.status_code for r in replies} == {202}
    ids = {r.json()["task_id"] for r in replies}
    assert len(ids) == 1
    assert sum(r.json()["deduplicated"] for r in replies) == 7
    gate.release()
    assert server.wait(ids.pop())["state"] == "done"
    assert gate.calls == 1


def test_concurrent_identical_aot_cells_build_one_library(make_server: Callable[..., Server],
                                                          cache_dir: Path) -> None:
    server = make_server(workers=4)
    source = ADD.replace("add", "plus")
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda _: server.client.post("/cells", json={"source": source}),
                                range(4)))
    ids = {r.json()["task_id"] for r in replies}
    assert len(ids) == 1
    status = server.wait(ids.pop())
    assert status["result"]["cache"] == "miss"
    libraries = [p for p in (cache_dir / "aot").glob("*/*") if p.is_dir() and len(p.name) == 64]
    assert len(libraries) == 1
    builds = [t for t in server.service.orchestrator.tasks() if t.kind == "build"]
    assert len(builds) == 1


def test_token_required_when_set(make_server: Callable[..., Server]) -> None:
    server = make_server(token=TOKEN)
    bare = httpx.Client(base_url=server.running.url)
    try:
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"},
                        {"Authorization": f"Basic {TOKEN}"}):
            r = bare.post("/cells", json={"source": ADD}, headers=headers)
            assert r.status_code == 401
            assert r.headers["www-authenticate"] == "Bearer"
            assert "Authorization: Bearer" in r.json()["error"]
            assert bare.get("/metrics", headers=headers).status_code == 401
            assert bare.get("/tasks/t-000001", headers=headers).status_code == 401
        assert bare.get("/livez").status_code == 200  # probes need no token
        assert bare.get("/readyz").status_code == 200
    finally:
        bare.close()
    assert server.client.post("/cells", json={"source": ADD}).status_code == 202


def test_off_loopback_needs_a_token() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")
    assert not is_loopback("example.org")
    with pytest.raises(FoxnbUsageError, match=r"refusing to listen on 0\.0\.0\.0 without a token"):
        start(ServerSettings(host="0.0.0.0", port=0))
    with pytest.raises(FoxnbUsageError, match="at least 16"):
        check_bind(ServerSettings(host="0.0.0.0", token="short"))
    check_bind(ServerSettings(host="0.0.0.0", token=TOKEN))
    check_bind(ServerSettings(host="127.0.0.1"))


def test_health_metrics_and_openapi(make_server: Callable[..., Server]) -> None:
    server = make_server()
    assert server.client.get("/livez").json() == {"status": "pass"}
    ready = server.client.get("/readyz", params={"verbose": "1"})
    assert ready.status_code == 200
    assert ready.json()["checks"]["orchestrator"]["accepting"] is True
    server.wait(server.client.post("/cells", json={"source": ADD}).json()["task_id"])
    metrics = server.client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'foxnb_tasks_total{kind="build",state="done"}' in metrics.text
    assert "foxnb_accepting 1.0" in metrics.text  # the server's own orchestrator
    schema = server.client.get("/openapi.json").json()
    assert {"/cells", "/tasks/{task_id}", "/artifacts/{key}/{file}", "/metrics", "/livez",
            "/readyz"} <= set(schema["paths"])
    assert "CellRequest" in schema["components"]["schemas"]


def test_connections_send_without_waiting_for_acks(make_server: Callable[..., Server]) -> None:
    # Without TCP_NODELAY (inherited from the listening socket) each response written in two
    # parts waited for the client's delayed ACK: 40 ms a request.
    import socket

    server = make_server()
    listening = server.running._sock
    assert listening.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
