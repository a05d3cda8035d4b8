"""The v1 API endpoints plus health, readiness and the OpenAPI description."""

from __future__ import annotations

import hmac
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelsearch.errors import DatabaseUnavailable, Forbidden, InvalidRequest, NotFound
from reelsearch.http.openapi import OPENAPI
from reelsearch.http.params import query_pairs
from reelsearch.http.responses import JSONResponse
from reelsearch.observability.stages import start_stages
from reelsearch.search.query import parse_autocomplete, parse_search

# Built once: the trivial endpoint is the ceiling the bench compares against.
_HEALTH_BODY = b'{"status":"ok"}'


async def search(request: Request) -> Response:
    started = time.perf_counter()
    stages = start_stages(request)
    state = request.app.state
    query = parse_search(
        query_pairs(request.scope["query_string"]),
        max_query_chars=state.settings.max_query_chars,
    )
    stages.lap("parse")
    if query.explain:
        _require_admin(request)
    result = await state.engine.search(query)
    stages.lap("engine")
    body: dict[str, object] = {
        "hits": result.hits,
        "total": result.total,
        "total_is_exact": result.total_is_exact,
    }
    if result.facets is not None:
        body["facets"] = result.facets
    body["next_cursor"] = result.next_cursor
    body["took_ms"] = round((time.perf_counter() - started) * 1000, 3)
    response = JSONResponse(body)
    stages.lap("serialization")
    return response


def _require_admin(request: Request) -> None:
    """Admin-only features need "Authorization: Bearer <REELSEARCH_ADMIN_TOKEN>"."""
    token = request.app.state.settings.admin_token
    if not token:
        raise Forbidden(
            "explain is an admin feature and no admin token is configured "
            "(set REELSEARCH_ADMIN_TOKEN)",
            param="explain",
        )
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # compare_digest: the time taken does not tell how much of a guess was right.
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
        raise Forbidden(
            "explain needs the admin token: send 'Authorization: Bearer <token>'",
            param="explain",
        )


async def autocomplete(request: Request) -> Response:
    stages = start_stages(request)
    state = request.app.state
    query = parse_autocomplete(
        query_pairs(request.scope["query_string"]),
        max_query_chars=state.settings.max_query_chars,
    )
    stages.lap("parse")
    hits = await state.engine.autocomplete(query)
    stages.lap("engine")
    response = JSONResponse({"suggestions": hits})
    stages.lap("serialization")
    return response


async def movie(request: Request) -> Response:
    raw_id = request.path_params["movie_id"]
    if not (raw_id.isascii() and raw_id.isdigit()) or len(raw_id) > 18:
        raise InvalidRequest(f"movie id must be a positive whole number, not {raw_id[:20]!r}",
                             param="id")  # fmt: skip
    state = request.app.state
    found = await state.engine.get_movie(int(raw_id))
    if found is None:
        raise NotFound(f"no movie with id {raw_id}")
    return JSONResponse(found)


async def health(request: Request) -> Response:
    return Response(_HEALTH_BODY, media_type="application/json")


async def ready(request: Request) -> Response:
    """200 when every required dependency is up; 503 otherwise, so a balancer stops sending
    traffic. Each dependency's state and reason: observability/readiness.py."""
    state = request.app.state
    report = await state.instrumentation.check_readiness()
    snapshot = state.engine.snapshot
    body = {**report.as_json(), "catalog_version": snapshot.version, "movies": snapshot.movie_count}
    if not report.is_ready:
        retry = {"Retry-After": str(DatabaseUnavailable.retry_after)}
        return JSONResponse(body, status_code=503, headers=retry)
    return JSONResponse(body)


async def openapi(request: Request) -> Response:
    return JSONResponse(OPENAPI)


ROUTES = [
    Route("/v1/search", search, methods=["GET"]),
    Route("/v1/autocomplete", autocomplete, methods=["GET"]),
    Route("/v1/movies/{movie_id}", movie, methods=["GET"]),
    Route("/health", health, methods=["GET"]),
    Route("/ready", ready, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]
