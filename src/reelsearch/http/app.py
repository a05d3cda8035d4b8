"""``create_app(settings)``: the ASGI app, its lifespan and its error handling."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from reelsearch.config import Settings
from reelsearch.errors import DatabaseUnavailable, InvalidRequest
from reelsearch.http.responses import error_response, invalid_request_response
from reelsearch.http.routes import ROUTES
from reelsearch.observability import Instrumentation
from reelsearch.search.backends import open_search_engine
from reelsearch.search.engine import SearchEngine

logger = logging.getLogger("reelsearch.http")


def create_app(settings: Settings) -> Starlette:
    """Build the app; the engine is opened in the lifespan and closed after it."""
    instrumentation = Instrumentation(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = await open_search_engine(settings)
        app.state.settings = settings
        app.state.engine = engine
        app.state.instrumentation = instrumentation
        instrumentation.attach(engine)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_follow_catalog, engine, settings.catalog_poll_seconds)
            tasks.start_soon(instrumentation.run)
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()
        await engine.close()

    return Starlette(
        routes=[*ROUTES, *instrumentation.routes],
        middleware=instrumentation.middleware(ROUTES),
        lifespan=lifespan,
        exception_handlers={
            InvalidRequest: _on_invalid_request,
            DatabaseUnavailable: _on_database_unavailable,
            HTTPException: _on_http_exception,
            Exception: _on_unexpected,
        },
    )


def app_from_env() -> Starlette:
    """The factory ``reelsearch serve`` hands to each server worker process."""
    return create_app(Settings.from_env())


async def _follow_catalog(engine: SearchEngine, every: float) -> None:
    """Pick up a catalog another process imported, without a restart.

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


async def _on_invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidRequest)
    return invalid_request_response(exc)


async def _on_database_unavailable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DatabaseUnavailable)
    response = error_response(503, "unavailable", str(exc))
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail))


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s", request.url.path)
    return error_response(500, "internal", "internal error; it has been logged")
