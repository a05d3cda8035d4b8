"""The v1 API endpoints plus health, readiness and the OpenAPI description."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelsearch.errors import DatabaseUnavailable, InvalidRequest, NotFound
from reelsearch.http.admin import has_admin_token, is_from
from reelsearch.http.disconnect import unless_disconnected
from reelsearch.http.documents import DOCUMENT_ROUTES, write_movie
from reelsearch.http.openapi import openapi_document
from reelsearch.http.params import query_pairs
from reelsearch.http.responses import JSONResponse, error_response
from reelsearch.http.search_route import SEARCH_ENDPOINT
from reelsearch.observability.stages import start_stages
from reelsearch.search.query import parse_autocomplete

# Built once: the trivial endpoint is the ceiling the bench compares against.
_HEALTH_BODY = b'{"status":"ok"}'


async def autocomplete(request: Request) -> Response:
    stages = start_stages(request)
    state = request.app.state
    query = parse_autocomplete(
        query_pairs(request.scope["query_string"]), **state.settings.query_limits
    )
    stages.lap("parse")
    engine = state.engine
    deadline = engine.deadline()
    hits = await unless_disconnected(
        request.receive, deadline, lambda: engine.autocomplete(query, deadline)
    )
    stages.lap("engine")
    response = JSONResponse({"suggestions": hits})
    stages.lap("serialization")
    return response


async def movie(request: Request) -> Response:
    if request.path_params["movie_id"] == "bulk":  # /v1/movies/bulk is POST only
        raise HTTPException(405, headers={"Allow": "POST"})
    if request.method in ("PUT", "DELETE"):  # the documents API (admin token)
        return await write_movie(request)
    raw_id = request.path_params["movie_id"]
    source, colon, source_id = raw_id.partition(":")
    if colon:  # /v1/movies/imdb:tt0133093: the movie's id where it came from
        if not (source and source_id) or len(raw_id) > 200:
            raise InvalidRequest(f"a source id is SOURCE:ID, like imdb:tt0133093, not "
                                 f"{raw_id[:40]!r}", param="id")  # fmt: skip
        by_source = await request.app.state.engine.get_movie(raw_id)
        if by_source is None:
            raise NotFound(f"no movie with source id {raw_id}")
        return JSONResponse(by_source)
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
    """200 when every required dependency is up; 503 otherwise, so a balancer stops
    sending traffic (observability/readiness.py checks them).

    Each dependency's state and reason, the catalog's version and size, only for the
    admin token or the configured addresses; to anyone else ``{"status": "ready"}``,
    or a 503 naming the dependencies that are down.
    """
    state = request.app.state
    report = await state.instrumentation.check_readiness()
    # The catalog's version and size tell an outsider when and how it changes, and a
    # reason may name a host: only for the admin token or REELSEARCH_READY_DETAILS_FROM.
    detailed = is_from(request, state.ready_details_from) or has_admin_token(request)
    if not report.is_ready:
        down = [d for d in report.dependencies if not d.is_up and d.is_required]
        said = [f"{d.name}: {d.reason}" if detailed else f"{d.name} is down" for d in down]
        response = error_response(503, "not_ready", "not ready: " + "; ".join(said))
        response.headers["Retry-After"] = str(DatabaseUnavailable.retry_after)
        return response
    if not detailed:
        return JSONResponse({"status": "ready"})
    snapshot = state.engine.snapshot
    return JSONResponse(
        {**report.as_json(), "catalog_version": snapshot.version, "movies": snapshot.movie_count}
    )


async def openapi(request: Request) -> Response:
    """The OpenAPI document of the catalog served now (its genres and kinds are enums)."""
    state = request.app.state
    snapshot = state.engine.snapshot
    cached = getattr(state, "openapi_cache", None)
    if cached is None or cached[0] != snapshot.version:
        genres = sorted(display for _, display in snapshot.genres.values())
        document = openapi_document(genres, sorted(snapshot.kinds))
        cached = state.openapi_cache = (snapshot.version, JSONResponse(document).body)
    return Response(cached[1], media_type="application/json")


ROUTES = [
    # A plain ASGI endpoint: no Request or Response per search (http/search_route.py).
    Route("/v1/search", SEARCH_ENDPOINT, methods=["GET"]),
    Route("/v1/autocomplete", autocomplete, methods=["GET"]),
    # Before /v1/movies/{movie_id}: a 405 on /v1/movies/bulk names its own methods.
    *DOCUMENT_ROUTES,
    Route("/v1/movies/{movie_id}", movie, methods=["GET", "PUT", "DELETE"]),
    Route("/health", health, methods=["GET"]),
    Route("/ready", ready, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]
