"""Admin endpoints of the result cache (``Authorization: Bearer <REELSEARCH_ADMIN_TOKEN>``).

``GET /v1/admin/cache`` reports counters and per-level use;
``POST /v1/admin/cache/invalidate`` with ``{"key": K}``, ``{"tag": T}`` or
``{"all": true}`` drops entries in every level and every process. Tags
(decision 0015): ``w:<word>`` a word searched, ``p:<word>`` a last word still
being typed ("q=heat" without a trailing space), ``x:``/``y:`` the same for
synonyms and joined words, ``m:<movie id>`` a movie on the page, ``browse``
every search without words, ``v:<catalog version>`` what it was computed on.
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelsearch.cache.service import ResultCache
from reelsearch.errors import InvalidRequest
from reelsearch.http.admin import admin_refusal
from reelsearch.http.responses import JSONResponse


def _cache(request: Request) -> ResultCache | None:
    return getattr(request.app.state, "result_cache", None)


async def cache_stats(request: Request) -> Response:
    if (refused := admin_refusal(request, "cache", "cache administration")) is not None:
        return refused
    cache = _cache(request)
    if cache is None:
        return JSONResponse({"enabled": False})
    return JSONResponse({"enabled": True, **await cache.stats()})


async def cache_invalidate(request: Request) -> Response:
    if (refused := admin_refusal(request, "cache", "cache administration")) is not None:
        return refused
    try:
        order = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            'the body must be JSON: {"key": ...}, {"tag": ...} or {"all": true}'
        ) from None
    if not isinstance(order, dict) or len(order) != 1:
        raise InvalidRequest('give exactly one of "key", "tag" or "all"')
    ((what, value),) = order.items()
    cache = _cache(request)
    if what == "all" and value is True:
        dropped = await cache.invalidate() if cache else 0
    elif what in ("key", "tag") and isinstance(value, str) and value:
        dropped = await cache.invalidate(**{what: value}) if cache else 0
    else:
        raise InvalidRequest('give exactly one of "key": str, "tag": str or "all": true',
                             param=what[:40])  # fmt: skip
    return JSONResponse({"dropped": dropped, "what": what})


CACHE_ROUTES = [
    Route("/v1/admin/cache", cache_stats, methods=["GET"]),
    Route("/v1/admin/cache/invalidate", cache_invalidate, methods=["POST"]),
]
