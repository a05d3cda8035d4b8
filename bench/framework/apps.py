"""Hello-world ASGI apps for the framework/server benchmark, selectable by name.

Every app answers ``GET /`` with ``{"status":"ok"}`` encoded by orjson per request. Serve one with
e.g. ``granian --interface asgi apps:starlette`` or ``uvicorn apps:fastapi`` from this directory.
Apps are built lazily on first attribute access, so a server imports only the framework it runs.

Names: raw, starlette, litestar, fastapi, starlette_mw_asgi, starlette_mw_base.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from starlette.middleware import Middleware

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]  # loose: each framework types its scope its own way

PAYLOAD = {"status": "ok"}
NAMES = ("raw", "starlette", "litestar", "fastapi", "starlette_mw_asgi", "starlette_mw_base")


# --- (a) raw ASGI: the floor -------------------------------------------------------------------


async def raw(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    status, body = (200, orjson.dumps(PAYLOAD)) if scope["path"] == "/" else (404, b"")
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# --- (b) Starlette, with and without middleware ------------------------------------------------


def _starlette(middleware: str = "none") -> ASGIApp:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    class OrjsonResponse(JSONResponse):
        def render(self, content: Any) -> bytes:
            return orjson.dumps(content)

    async def status(request: Request) -> OrjsonResponse:
        return OrjsonResponse(PAYLOAD)

    stack: list[Middleware] = []
    if middleware == "asgi":
        stack = [Middleware(AsgiHeader, name=n, value=v) for n, v in HEADERS]
    elif middleware == "base":
        stack = _base_header_stack()
    return Starlette(routes=[Route("/", status)], middleware=stack)


# Three response headers, each added by its own middleware: request id, timing, Server-Timing.
ValueFn = Callable[[int], str]


def _request_id(start_ns: int) -> str:
    return uuid.uuid4().hex


def _elapsed_ns(start_ns: int) -> str:
    return str(time.perf_counter_ns() - start_ns)


def _server_timing(start_ns: int) -> str:
    return f"app;dur={(time.perf_counter_ns() - start_ns) / 1e6:.3f}"


HEADERS: tuple[tuple[str, ValueFn], ...] = (
    ("x-request-id", _request_id),
    ("x-response-time-ns", _elapsed_ns),
    ("server-timing", _server_timing),
)


class AsgiHeader:
    """Pure ASGI middleware: wraps ``send`` and appends one header to ``http.response.start``."""

    def __init__(self, app: ASGIApp, name: str, value: ValueFn) -> None:
        self.app, self.name, self.value = app, name.encode(), value

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter_ns()

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                header = (self.name, self.value(start).encode())
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await self.app(scope, receive, send_with_header)


def _base_header_stack() -> list[Middleware]:
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
    from starlette.requests import Request
    from starlette.responses import Response

    class BaseHeader(BaseHTTPMiddleware):
        """The same header, added the ``BaseHTTPMiddleware.dispatch`` way."""

        def __init__(self, app: ASGIApp, name: str, value: ValueFn) -> None:
            super().__init__(app)
            self.name, self.value = name, value

        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            start = time.perf_counter_ns()
            response = await call_next(request)
            response.headers[self.name] = self.value(start)
            return response

    return [Middleware(BaseHeader, name=n, value=v) for n, v in HEADERS]


# --- (c) Litestar ------------------------------------------------------------------------------


def _litestar() -> ASGIApp:
    from litestar import Litestar, MediaType, Response, get

    @get("/")
    async def status() -> Response[bytes]:
        return Response(content=orjson.dumps(PAYLOAD), media_type=MediaType.JSON)

    # Annotations are strings here (PEP 563), so tell Litestar where ``Response`` comes from.
    return Litestar([status], openapi_config=None, signature_namespace={"Response": Response})


# --- (d) FastAPI -------------------------------------------------------------------------------


def _fastapi() -> ASGIApp:
    from fastapi import FastAPI
    from fastapi.responses import Response

    class OrjsonResponse(Response):
        media_type = "application/json"

        def render(self, content: Any) -> bytes:
            return orjson.dumps(content)

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/", response_class=OrjsonResponse)
    async def status() -> OrjsonResponse:
        return OrjsonResponse(PAYLOAD)

    return app


_BUILDERS: dict[str, Callable[[], ASGIApp]] = {
    "starlette": _starlette,
    "starlette_mw_asgi": lambda: _starlette("asgi"),
    "starlette_mw_base": lambda: _starlette("base"),
    "litestar": _litestar,
    "fastapi": _fastapi,
}


def __getattr__(name: str) -> ASGIApp:
    """Build an app on first access (PEP 562), so ``apps:litestar`` imports only Litestar."""
    if name not in _BUILDERS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    app = _BUILDERS[name]()
    globals()[name] = app
    return app
