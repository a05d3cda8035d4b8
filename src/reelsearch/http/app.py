"""``create_app(settings)``: the ASGI app, its lifespan and its error handling."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from reelsearch.config import Settings
from reelsearch.errors import InvalidRequest
from reelsearch.http.responses import error_response, invalid_request_response
from reelsearch.http.routes import ROUTES
from reelsearch.search.sqlite import SqliteSearchEngine

logger = logging.getLogger("reelsearch.http")


def create_app(settings: Settings) -> Starlette:
    """Build the app; the engine is opened in the lifespan and closed after it."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = await anyio.to_thread.run_sync(SqliteSearchEngine, settings)
        app.state.settings = settings
        app.state.engine = engine
        # One thread per pooled read connection: more threads would only queue.
        threads = settings.db_read_pool_size if settings.search_in_threads else 0
        app.state.limiter = anyio.CapacityLimiter(threads) if threads else None
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_follow_catalog, engine, settings.catalog_poll_seconds)
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()
        engine.close()

    return Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        exception_handlers={
            InvalidRequest: _on_invalid_request,
            HTTPException: _on_http_exception,
            Exception: _on_unexpected,
        },
    )


def app_from_env() -> Starlette:
    """The factory ``reelsearch serve`` hands to each server worker process."""
    return create_app(Settings.from_env())


async def _follow_catalog(engine: SqliteSearchEngine, every: float) -> None:
    """Pick up a catalog another process imported, without a restart."""
    while True:
        await anyio.sleep(every)
        try:
            if await anyio.to_thread.run_sync(engine.refresh_if_changed):
                logger.info("catalog changed; now serving version %d", engine.snapshot.version)
        except Exception:  # keep serving the catalog we have
            logger.exception("could not check the catalog version")


async def _on_invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidRequest)
    return invalid_request_response(exc)


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail))


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s", request.url.path)
    return error_response(500, "internal", "internal error; it has been logged")
