"""The outermost middleware: request id, metrics, access line and slow-request log.

Per request it costs a clock read at each end, a header appended, a counter
and a histogram (children cached by label values), and, when the access
log is on, one formatted line. Labels name the route template
(``/v1/movies/{movie_id}``), never the raw path or query string, so the
number of series is bounded by the routes, not by what clients send.

Error responses (status 400 and up) are small JSON bodies
``{"error": {"code": ...}}``; their code becomes the error kind (so a 503
says whether the database or a deadline caused it).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Iterable
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


def route_of(scope: Scope, static_routes: dict[str, str]) -> str:
    """The route template that answered, for a label: never the raw path."""
    route = scope.get("route")
    if route is not None:
        return str(getattr(route, "path", UNMATCHED))
    # Answered before routing (a fast path) or by no route at all.
    return static_routes.get(scope.get("path", ""), UNMATCHED)


def request_id_of(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-ID if well formed, else a new random one."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            if _WELL_FORMED_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return secrets.token_hex(8)


def _error_code(body: bytes) -> str:
    try:
        return str(orjson.loads(body)["error"]["code"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return "other"


class ObservedRequests:
    """Wraps the whole app: every response, whoever produced it, is observed."""

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
        self.metrics = metrics
        self.slow_log = slow_log
        self.access_log = access_log
        self.static_routes = static_routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope["headers"])
        scope[SCOPE_REQUEST_ID] = request_id
        stages: dict[str, float] = {}
        scope[SCOPE_STAGES] = stages
        id_header = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        status = 500
        error_body: bytearray | None = None

        async def send_observed(message: Message) -> None:
            nonlocal status, error_body
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
                if status >= 400:
                    error_body = bytearray()
            elif error_body is not None and len(error_body) < 4096:
                error_body += message.get("body", b"")
            await send(message)

        metrics = self.metrics
        if metrics is not None:
            metrics.active += 1
        try:
            await self.app(scope, receive, send_observed)
        except asyncio.CancelledError:  # the client went away before the answer
            status, error_body = 499, bytearray(b'{"error":{"code":"client_closed_request"}}')
            raise
        except BaseException:  # answered 500 by the server-error handler outside
            status, error_body = 500, bytearray(b'{"error":{"code":"internal"}}')
            raise
        finally:
            seconds = time.perf_counter() - started
            route = route_of(scope, self.static_routes)
            method = scope["method"]
            if metrics is not None:
                metrics.active -= 1
                metrics.observe_request(route, method, status, seconds)
                if error_body is not None:
                    metrics.count_error(route, status, _error_code(bytes(error_body)))
            if self.access_log and access_logger.isEnabledFor(logging.INFO):
                _log_access(scope, route, method, status, seconds, request_id)
            if self.slow_log.is_slow(seconds):
                self.slow_log.record(scope, route, status, seconds, stages, request_id)


def _log_access(
    scope: Scope, route: str, method: str, status: int, seconds: float, request_id: str
) -> None:
    fields: dict[str, Any] = {
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
        "request_id": request_id,
    }
    cache = scope.get(SCOPE_CACHE)
    if cache is not None:
        fields["cache"] = cache
    # A record made here skips Logger._log's caller lookup (a stack walk): half the
    # cost of a line (bench/RESULTS.md, "Observability").
    args = (method, route, status, seconds * 1000)
    record = logging.LogRecord(
        access_logger.name, logging.INFO, __file__, 0, "%s %s %d %.1f ms", args, None
    )
    record.fields = fields
    access_logger.handle(record)
