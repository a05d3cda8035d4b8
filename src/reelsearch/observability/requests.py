"""What every request records: request id, metrics, access line and slow-request log.

``RequestObserver`` holds the per-request work, called by the app's front
layer (http/middleware/front.py) at the start and the end of each request;
``ObservedRequests`` is the same work as a middleware of its own (benches
measure it alone around an app that does nothing).

Per request it costs a clock read at each end, a counter and a histogram
bucket in plain dicts (observability/metrics.py), and, when the access log
is on, one JSON line formatted and written directly (observability/logging.py
``AccessLineWriter``): a few microseconds in all. Labels name the route
template (``/v1/movies/{movie_id}``), never the raw path or query string, so
the number of series is bounded by the routes, not by what clients send.

Error responses (status 400 and up) are small JSON bodies
``{"error": {"code": ...}}``; their code becomes the error kind (so a 503
says whether the database or a deadline caused it).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Iterable
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelsearch.observability.logging import AccessLineWriter
from reelsearch.observability.metrics import UNMATCHED, Metrics
from reelsearch.observability.slowlog import SlowRequestLog

access_logger = logging.getLogger("reelsearch.access")

REQUEST_ID_HEADER = b"x-request-id"
# A client's id is kept when it is short and plain (a UUID, a trace id);
# anything else could smuggle text into log lines and is replaced.
_WELL_FORMED_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,64}")
# Where the app and other middleware find per-request facts (ASGI scope extension keys).
SCOPE_REQUEST_ID = "reelsearch.request_id"
SCOPE_STAGES = "reelsearch.stages"
SCOPE_CACHE = "reelsearch.cache"  # set by the result cache: "hit", "miss", "stale", ...
# Error bodies are read up to this many bytes for their code.
_ERROR_BODY_BYTES = 4096


def route_of(scope: Scope, static_routes: dict[str, str]) -> str:
    """The route template that answered, for a label: never the raw path."""
    route = scope.get("route")
    if route is not None:
        return str(getattr(route, "path", UNMATCHED))
    # Answered before routing (a fast path) or by no route at all.
    return static_routes.get(scope.get("path", ""), UNMATCHED)


def request_id_of(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-ID if well formed, else a new random one.

    A new id is 64 random bits from the process's generator (reseeded in each
    forked worker): an id correlates lines, it guards nothing, and
    ``secrets.token_hex`` costs a system call per request.
    """
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            if _WELL_FORMED_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return f"{random.getrandbits(64):016x}"


def error_code(body: bytes) -> str:
    try:
        return str(orjson.loads(body)["error"]["code"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return "other"


class RequestObserver:
    """Counts, logs and (when slow) details one request; built once per app."""

    __slots__ = ("access", "metrics", "slow_log", "static_routes")

    def __init__(
        self,
        *,
        metrics: Metrics | None,
        slow_log: SlowRequestLog,
        access_log: bool,
        static_routes: dict[str, str],
    ) -> None:
        self.metrics = metrics
        self.slow_log = slow_log
        self.access = AccessLineWriter(access_logger) if access_log else None
        self.static_routes = static_routes

    def begin(self, scope: Scope) -> str:
        """Give the request its id and a place for stage times; count it in flight."""
        request_id = request_id_of(scope["headers"])
        scope[SCOPE_REQUEST_ID] = request_id
        scope[SCOPE_STAGES] = {}
        if self.metrics is not None:
            self.metrics.active += 1
        return request_id

    def finish(
        self,
        scope: Scope,
        status: int,
        error_body: bytes | bytearray | None,
        seconds: float,
        request_id: str,
    ) -> None:
        route = route_of(scope, self.static_routes)
        method = scope["method"]
        metrics = self.metrics
        if metrics is not None:
            metrics.active -= 1
            metrics.observe_request(route, method, status, seconds)
            if error_body is not None:
                metrics.count_error(route, status, error_code(bytes(error_body)))
        if self.access is not None:
            self.access.write(method, route, status, seconds, request_id, scope.get(SCOPE_CACHE))
        if self.slow_log.is_slow(seconds):
            stages = scope.get(SCOPE_STAGES) or {}
            self.slow_log.record(scope, route, status, seconds, stages, request_id)


class ObservedRequests:
    """``RequestObserver`` as a middleware of its own, with the request id header."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics | None,
        slow_log: SlowRequestLog,
        access_log: bool,
        static_routes: dict[str, str],
    ) -> None:
        self.app = app
        self.observer = RequestObserver(
            metrics=metrics, slow_log=slow_log, access_log=access_log, static_routes=static_routes
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await observe(self.app, self.observer, scope, receive, send)


async def observe(
    app: ASGIApp,
    observer: RequestObserver,
    scope: Scope,
    receive: Receive,
    send: Send,
    add_headers: Any = None,
) -> None:
    """Run ``app`` for one request under ``observer``.

    Each response start gets the request id header,
    through ``add_headers(headers, tail)`` when given (the front layer's
    security headers), else appended.
    """
    started = time.perf_counter()
    request_id = observer.begin(scope)
    tail = ((REQUEST_ID_HEADER, request_id.encode("ascii")),)
    status = 500
    error_body: bytearray | None = None

    async def send_observed(message: Message) -> None:
        nonlocal status, error_body
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = message.get("headers", ())
            message["headers"] = (
                add_headers(headers, tail) if add_headers is not None else [*headers, *tail]
            )
            if status >= 400:
                error_body = bytearray()
        elif error_body is not None and len(error_body) < _ERROR_BODY_BYTES:
            error_body += message.get("body", b"")
        await send(message)

    try:
        await app(scope, receive, send_observed)
    except asyncio.CancelledError:  # the client went away before the answer
        status, error_body = 499, bytearray(b'{"error":{"code":"client_closed_request"}}')
        raise
    except BaseException:  # answered 500 by the server-error handler outside
        status, error_body = 500, bytearray(b'{"error":{"code":"internal"}}')
        raise
    finally:
        observer.finish(scope, status, error_body, time.perf_counter() - started, request_id)
