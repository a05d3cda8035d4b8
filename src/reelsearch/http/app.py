"""``create_app(settings)``: the ASGI app, its lifespan and its error handling."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from reelsearch.cache.heap import HeapFreezer, freeze_heap, thaw_heap
from reelsearch.config import Settings
from reelsearch.errors import DatabaseUnavailable, InvalidRequest, SearchStopped, SearchTimedOut
from reelsearch.http.admin import parse_networks
from reelsearch.http.assets import static_mount
from reelsearch.http.cache_admin import CACHE_ROUTES
from reelsearch.http.export import EXPORT_ROUTES
from reelsearch.http.middleware.front import FrontDoor
from reelsearch.http.middleware.ratelimit import make_limiter
from reelsearch.http.middleware.security import with_security_headers
from reelsearch.http.pages import PAGE_ROUTES, open_page_services
from reelsearch.http.responses import error_response, invalid_request_response
from reelsearch.http.routes import ROUTES
from reelsearch.http.search_cache import start_result_cache, stop_result_cache
from reelsearch.http.search_route import SearchHandler
from reelsearch.observability import Instrumentation
from reelsearch.search.backends import open_search_engine
from reelsearch.search.engine import SearchEngine

logger = logging.getLogger("reelsearch.http")


def create_app(settings: Settings) -> Starlette:
    """Build the app; the engine is opened in the lifespan and closed after it."""
    instrumentation = Instrumentation(settings)
    limiter = make_limiter(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = await open_search_engine(settings)
        app.state.settings = settings
        app.state.engine = engine
        app.state.instrumentation = instrumentation
        instrumentation.attach(engine)
        async with anyio.create_task_group() as tasks, open_page_services(app, settings, tasks):
            freezer = HeapFreezer(engine)
            tasks.start_soon(_follow_catalog, engine, settings.catalog_poll_seconds, freezer)
            await start_result_cache(app, settings, tasks)
            app.state.search_handler = SearchHandler(
                settings, app.state.search_responder, engine, instrumentation.metrics
            )
            if app.state.result_cache is not None:
                instrumentation.track_cache(
                    app.state.cache_counters.event_totals,
                    app.state.result_cache.level_sizes,
                    app.state.result_cache.shared_level_sizes,
                )
            tasks.start_soon(instrumentation.run)
            # What is loaded by now (the engine's snapshot) leaves the collector's view:
            # held answers and plan caches made full collections walk it (cache/heap.py).
            app.state.heap_freezer = freezer
            freeze_heap()
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()
        thaw_heap()
        await instrumentation.slow_log.finish()
        await stop_result_cache(app)
        await engine.close()
        if limiter is not None:
            await limiter.close()
        instrumentation.flush_logs()

    app = Starlette(
        routes=[
            *ROUTES,
            *EXPORT_ROUTES,
            *CACHE_ROUTES,
            *PAGE_ROUTES,
            *instrumentation.routes,
            static_mount(),
        ],  # fmt: skip
        lifespan=lifespan,
        # One layer (http/middleware/front.py): it observes every response, a
        # refusal's too, adds the security headers, runs the gates that are
        # configured (CORS outside API keys outside the rate limit, so a browser
        # can read a 429) and answers L1 hits before routing: a cached answer is
        # still refused without a required API key, narrowed by a scoped token,
        # rate limited and given the security headers.
        middleware=[
            Middleware(
                FrontDoor,
                observer=instrumentation.request_observer(
                    [*ROUTES, *EXPORT_ROUTES, *CACHE_ROUTES, *PAGE_ROUTES]
                ),
                profiling=instrumentation.profiling,
                settings=settings,
                limiter=limiter,
            ),
        ],
        exception_handlers={
            InvalidRequest: _on_invalid_request,
            DatabaseUnavailable: _on_database_unavailable,
            SearchStopped: _on_search_stopped,
            HTTPException: _on_http_exception,
            Exception: _on_unexpected,
        },
    )
    # "/v1/search/" would be redirected to an absolute URL built from the Host
    # header (an open redirect through a cache or a proxy): it is a plain 404.
    app.router.redirect_slashes = False
    app.state.ready_details_from = parse_networks(settings.ready_details_from)
    return app


def app_from_env() -> Starlette:
    """The factory ``reelsearch serve`` hands to each server worker process."""
    return create_app(Settings.from_env())


async def _follow_catalog(engine: SearchEngine, every: float, freezer: HeapFreezer) -> None:
    """Pick up a catalog another process imported, without a restart; then re-freeze the
    heap if the catalog changed (``freezer``, at most once per its interval).

    A failure is logged when it starts and again when it ends, not every poll.
    """
    failing = False
    while True:
        await anyio.sleep(every)
        try:
            if await engine.refresh_if_changed():
                logger.info("catalog changed; now serving version %d", engine.snapshot.version)
        except DatabaseUnavailable as exc:  # down for now: requests get 503s meanwhile
            if not failing:
                logger.warning("could not check the catalog version: %s", exc)
            failing = True
        except Exception:  # keep serving the catalog we have
            if not failing:
                logger.exception("could not check the catalog version")
            failing = True
        else:
            if failing:
                logger.info("the catalog version can be checked again")
            failing = False
            freezer.check()


async def _on_invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidRequest)
    return invalid_request_response(exc)


async def _on_database_unavailable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DatabaseUnavailable)
    response = error_response(503, "unavailable", str(exc))
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _on_search_stopped(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, SearchTimedOut):  # cancelled: the client is gone, nobody reads this
        return error_response(499, "client_closed_request", str(exc))
    response = error_response(503, "deadline_exceeded", str(exc))
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    response = error_response(exc.status_code, code, str(exc.detail))
    # A 405 names the methods the resource has (RFC 9110: "Allow" is required there).
    response.headers.update(exc.headers or {})
    return response


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s", request.url.path)
    response = error_response(500, "internal", "internal error; it has been logged")
    # Starlette answers this outside the middleware stack: add the headers here.
    response.raw_headers[:] = with_security_headers(list(response.raw_headers))
    return response
