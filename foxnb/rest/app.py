"""The FastAPI application of ``foxnb serve``: submit cells, poll tasks, download libraries.

Routes (the OpenAPI schema is at ``/openapi.json``, interactive docs at ``/docs``):

- ``POST /cells`` — build a cell; 202 with the task id. Equal requests share one build.
- ``GET /tasks/{id}`` — state, attempts, error; when done, the library key and its files.
- ``GET /artifacts/{key}/{file}`` — ``NAME.so`` or ``NAME.h`` of a built library, by its
  content-addressed key (``X-Checksum-SHA256`` and ``ETag`` headers).
- ``GET /metrics``, ``/livez``, ``/readyz`` — as :mod:`foxnb.server` (same functions).

With a token, every route but ``/livez`` and ``/readyz`` needs ``Authorization: Bearer``.
Every error is JSON: ``{"error": "...", "errors": [{"field", "message", "fix"}]}``.
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

import foxnb
from foxnb.rest.models import CellRequest, ErrorBody, TaskAccepted, TaskStatus, fix_for
from foxnb.rest.service import BuildService, Busy, ServerSettings

__all__ = ["create_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ApiError(Exception):
    """An error response: status, a sentence, optional invalid fields and headers."""

    def __init__(self, status: int, error: str, *, field: str | None = None,
                 fix: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        fix = fix or (fix_for(field, "") if field is not None else None)
        self.status = status
        # a 422 reads as the validation errors do: "invalid FIELD: what; fix"
        self.error = f"invalid {field}: {error}; {fix}" if status == 422 and field else error
        self.errors = [] if field is None else [{"field": field, "message": error,
                                                  "fix": fix or ""}]
        self.headers = headers


def _error(status: int, error: str, errors: list[dict[str, str]] | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "errors": errors or []}, status_code=status,
                        headers=headers)


class BodyLimit:
    """ASGI middleware: 413 for a request body over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._too_large(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:  # read it all (at most max_bytes), then hand it on
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(body)
            more = bool(message.get("more_body", False))
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = _error(413, f"the request body is larger than {self.max_bytes} bytes; send "
                               "a smaller cell (or start the server with a larger "
                               "--max-body)", [{"field": "body", "message": "too large",
                                                "fix": "send at most "
                                                       f"{self.max_bytes} bytes"}])
        await response(scope, receive, send)


def create_app(settings: ServerSettings | None = None, *,
               service: BuildService | None = None) -> FastAPI:
    """The compile server's ASGI application.

    Parameters
    ----------
    settings : ServerSettings, optional
        Token, limits and workers (default :class:`ServerSettings`).
    service : BuildService, optional
        The build service to serve (default: a new one, closed when the app shuts down).

    Returns
    -------
    fastapi.FastAPI
    """
    from foxnb.metrics import exposition, make_registry
    from foxnb.server import health

    settings = settings or ServerSettings()
    owned = service is None
    svc = service if service is not None else BuildService(settings)
    registry = make_registry(orchestrator=svc.orchestrator)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            await anyio.to_thread.run_sync(svc.close)

    app = FastAPI(title="foxnb compile server", version=foxnb.__version__, lifespan=lifespan,
                  description=__doc__, responses={
                      401: {"model": ErrorBody}, 413: {"model": ErrorBody},
                      422: {"model": ErrorBody}, 429: {"model": ErrorBody}})
    app.state.service = svc
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    token = (settings.token or "").encode()

    async def authorised(request: Request) -> None:  # async: no thread hop per request
        if not token:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token):
            raise ApiError(401, "missing or wrong bearer token: send the header "
                                "'Authorization: Bearer <token>' with the token the server "
                                "was started with", headers={"WWW-Authenticate": "Bearer"})

    auth = [Depends(authorised)]

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.error, exc.errors, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            loc = [str(p) for p in e.get("loc", ()) if p != "body"]
            field, message = ".".join(loc) or "body", str(e.get("msg", "invalid"))
            if e.get("type") == "json_invalid":  # loc is the body and a character offset
                field, message = "body", f"not valid JSON at character {loc[0] if loc else 0}"
            errors.append({"field": field, "message": message,
                           "fix": fix_for(field, str(e.get("type", "")))})
        first = errors[0] if errors else {"field": "body", "message": "invalid", "fix": ""}
        return _error(422, f"invalid {first['field']}: {first['message']}; {first['fix']}",
                      errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail),
                      headers=dict(exc.headers) if exc.headers else None)

    @app.post("/cells", status_code=202, response_model=TaskAccepted, dependencies=auth,
              summary="Build a cell (an equal request joins the running build)")
    async def submit(cell: CellRequest) -> TaskAccepted:
        try:
            compile(cell.source, "<cell>", "exec")
        except SyntaxError as exc:
            raise ApiError(422, f"source line {exc.lineno}: {exc.msg}", field="source",
                           fix="send valid Python 3 source") from None
        if cell.engine == "jit" and not cell.signatures:
            raise ApiError(422, "engine jit compiles eagerly and needs at least one signature",
                           field="signatures")
        try:
            handle, joined = svc.submit(cell.spec())
        except Busy as exc:
            raise ApiError(429, str(exc), headers={"Retry-After": "1"}) from None
        return TaskAccepted(task_id=handle.id, state=str(handle.state), deduplicated=joined,
                            status_url=f"/tasks/{handle.id}")

    @app.get("/tasks/{task_id}", response_model=TaskStatus, dependencies=auth,
             summary="A build's state, attempts, error and result")
    async def task(task_id: str) -> dict[str, Any]:
        found = svc.task(task_id)
        if found is None:
            raise ApiError(404, f"no task {task_id!r}: ids come from POST /cells, and finished "
                                f"tasks are kept for the last {settings.history} builds",
                           field="task_id", fix="use the task_id POST /cells returned")
        return found

    @app.get("/artifacts/{key}/{file}", dependencies=auth, response_class=Response,
             summary="Download NAME.so or NAME.h of a built library",
             responses={200: {"content": {"application/octet-stream": {}}}})
    async def artifact(key: str, file: str, request: Request) -> Response:
        found = svc.cached_artifact(key, file)
        if found is None:
            found = await anyio.to_thread.run_sync(svc.artifact, key, file)
        if found is None:
            raise ApiError(404, f"no file {file!r} in a library with key {key!r}", field="key",
                           fix="use a key and a file name from GET /tasks/{id} (result.files)")
        data, sha = found
        headers = {"X-Checksum-SHA256": sha, "ETag": f'"{sha}"',
                   "Cache-Control": "public, max-age=31536000, immutable"}
        if request.headers.get("if-none-match") == f'"{sha}"':
            return Response(status_code=304, headers=headers)
        media = "application/octet-stream" if file.endswith(".so") else "text/x-c"
        return Response(data, media_type=media, headers=headers)

    @app.get("/metrics", dependencies=auth, response_class=PlainTextResponse,
             summary="Prometheus metrics (foxnb.metrics)")
    def metrics() -> PlainTextResponse:
        from prometheus_client import CONTENT_TYPE_LATEST

        return PlainTextResponse(exposition(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/livez", summary="The process answers")
    async def livez() -> dict[str, str]:
        return {"status": "pass"}

    @app.get("/readyz", summary="foxnb can build now (foxnb.health); 503 when it cannot")
    def readyz(verbose: bool = False) -> JSONResponse:
        report = health(verbose, orchestrator=svc.orchestrator)
        return JSONResponse(report, status_code=503 if report["status"] == "fail" else 200)

    return app
