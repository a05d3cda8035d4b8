"""The front layer: the one middleware every request crosses, decided at start-up.

It does what used to take five stacked middlewares (observer, security
headers, API keys, profiling, fast path), each wrapping ``send`` again and
costing a coroutine call per request even when off by configuration:

1. observe the request (id, metrics, access line, slow log:
   observability/requests.py) and add the security headers and the
   request id to its response in one pass over the headers; refuse a
   request target or header fields over the app's bounds (head_limits.py);
2. only if something is configured or asked for, the gates, in their old
   order: CORS, API keys, rate limit, ``profile=1`` (each its own module);
3. answer an L1 hit of ``GET /v1/search`` from the stored headers and body
   (http/fastpath.py), else hand the request to its route: a fixed path
   (``/v1/search``, ``/health``...) found by one dict lookup, any other through
   Starlette's exception middleware and router.

With no CORS origins, no rate limit and no required key (the default), a
request that sends no ``X-API-Key`` and no ``profile=`` goes straight from 1
to 3. One that does goes through the same gate chain as with them configured,
so behaviour does not depend on which way it went.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import Match, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from reelsearch.config import Settings
from reelsearch.http.apikeys import parse_keys
from reelsearch.http.fastpath import FastPathMiddleware, MemoryAnswers
from reelsearch.http.limiter import Limiter
from reelsearch.http.middleware.apikeys import ApiKeyMiddleware
from reelsearch.http.middleware.cors import allowed_origins, cors_middleware
from reelsearch.http.middleware.head_limits import head_refusal, send_refusal
from reelsearch.http.middleware.ratelimit import rate_limit_middleware
from reelsearch.http.middleware.security import (
    SECURITY_HEADERS,
    SECURITY_NAMES,
    with_security_headers,
)
from reelsearch.observability.requests import RequestObserver, observe

Headers = list[tuple[bytes, bytes]]


def with_front_headers(headers: Headers, tail: tuple[tuple[bytes, bytes], ...]) -> Headers:
    """``headers``, the security headers they do not set, then ``tail`` (the request id)."""
    for name, _ in headers:
        if name.lower() in SECURITY_NAMES:
            out = with_security_headers(list(headers))
            out.extend(tail)
            return out
    return [*headers, *SECURITY_HEADERS, *tail]


class FrontDoor:
    """Observes every request, adds the response headers, gates, then fast path or app."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        observer: RequestObserver,
        profiling: Callable[[ASGIApp], ASGIApp],
        settings: Settings,
        limiter: Limiter | None,
    ) -> None:
        self.app = app
        self.observer = observer
        # The gates, built innermost first exactly as they were stacked before.
        self.memory_answers = MemoryAnswers()
        gated: ASGIApp = FastPathMiddleware(app, self.memory_answers)
        gated = profiling(gated)  # profile=1 (observability/profiling.py)
        for middleware in reversed(rate_limit_middleware(settings, limiter)):
            gated = middleware.cls(gated, *middleware.args, **middleware.kwargs)
        gated = ApiKeyMiddleware(
            gated, keys=parse_keys(settings.api_keys), require_key=settings.require_api_key
        )
        for middleware in reversed(cors_middleware(settings)):
            gated = middleware.cls(gated, *middleware.args, **middleware.kwargs)
        self.gated = gated
        # Filled at the first request (_exact_routes).
        self._exact: dict[tuple[str, str], Route] | None = None
        self._handlers: tuple[Any, Any] = ({}, {})
        self._router: Router | None = None
        # Every request must pass the gates when any of them applies to every request.
        self.always_gated = bool(
            allowed_origins(settings) or limiter is not None or settings.require_api_key
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await observe(self._dispatch, self.observer, scope, receive, send, with_front_headers)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        # An oversized head is refused before anything is spent on it (head_limits.py).
        refusal = head_refusal(scope)
        if refusal is not None:
            await send_refusal(send, refusal)
            return
        if self.always_gated or b"profile=" in scope["query_string"] or _sends_a_key(scope):
            await self.gated(scope, receive, send)
            return
        if await self.memory_answers.answer(scope, send):
            return
        exact = self._exact
        if exact is None:  # the first request: the app and its routes are final by now
            exact = self._exact = self._exact_routes(scope["app"].router)
        route = None if scope.get("root_path") else exact.get((scope["path"], scope["method"]))
        if route is None:
            await self.app(scope, receive, send)
            return
        # What Starlette's exception middleware and router would have set on the way.
        scope["starlette.exception_handlers"] = self._handlers
        scope["router"] = self._router
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = {}
        await route.app(scope, receive, send)

    def _exact_routes(self, router: Router) -> dict[tuple[str, str], Route]:
        """Route the app's fixed paths by a dict lookup instead of Starlette's scan.

        For each path without parameters and each of its methods, the route
        Starlette's router would choose (the first that matches fully) is
        remembered. The endpoint still runs inside Starlette's own
        ``request_response`` wrapper, which answers exceptions with the
        app's handlers, so only the scan and one wrapper layer are skipped.
        """
        exceptions = self.app
        if not isinstance(exceptions, ExceptionMiddleware) or exceptions.app is not router:
            return {}  # not the stack this was written for: leave routing to Starlette
        self._handlers = (exceptions._exception_handlers, exceptions._status_handlers)
        self._router = router
        exact: dict[tuple[str, str], Route] = {}
        for route in router.routes:
            if not isinstance(route, Route) or route.param_convertors or not route.methods:
                continue
            for method in route.methods:
                probe = {"type": "http", "path": route.path, "root_path": "", "method": method}
                first = next((r for r in router.routes if r.matches(probe)[0] is Match.FULL), None)
                if first is route:
                    exact[(route.path, method)] = route
        return exact


def _sends_a_key(scope: Scope) -> bool:
    """An ``X-API-Key`` on a /v1/ path: the key middleware must check it (or refuse it)."""
    if not scope["path"].startswith("/v1/"):
        return False
    for name, _ in scope["headers"]:  # noqa: SIM110 - a loop: any() adds a generator per request
        if name == b"x-api-key":
            return True
    return False
