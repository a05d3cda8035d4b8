"""The fast path: a repeated search answered from L1 before routing and validation.

Called by the front layer (http/middleware/front.py) after the request is
observed and, when configured, after API keys and rate limits, so cached
answers get the security headers and the same refusals as computed ones.
For ``GET /v1/search`` it looks the raw query string up in the cache's alias
map (filled when the routed path answered the same string), checks that the
cache is keyed to the catalog the engine now serves, and sends the stored
entry if it is fresh. Anything else (a new spelling, a stale or missing
entry, another path) goes down the normal stack, which handles misses,
staleness, errors and invalidation.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Receive, Scope, Send

from reelsearch.cache.service import ResultCache
from reelsearch.http.search_cache import SearchResponder
from reelsearch.observability.requests import SCOPE_CACHE

SEARCH_PATH = "/v1/search"


async def answer_from_memory(scope: Scope, send: Send) -> bool:
    """Send the fresh L1 entry for this ``GET /v1/search``; False (nothing sent) if none."""
    started = time.perf_counter()
    state = scope["app"].state
    cache: ResultCache | None = getattr(state, "result_cache", None)
    if cache is None or cache.memory is None:
        return False
    query_string: bytes = scope["query_string"]
    key = cache.aliases.get(query_string)
    if key is None or not cache.is_current(state.engine.snapshot.version):
        return False
    now = time.time()
    entry = cache.memory.lookup(key, now)
    if entry is None or now >= entry.fresh_until:  # the routed path refreshes stale ones
        return False
    cache.note_memory_hit(key, entry)
    counters = cache.counters
    counters.hits["memory"] += 1
    counters.fast_path += 1
    cache.search_log.record(query_string)
    scope[SCOPE_CACHE] = "hit"  # for the access line
    responder: SearchResponder = state.search_responder
    server_ms = (time.perf_counter() - started) * 1000
    await responder.sender.send(send, entry, scope["headers"], server_ms)
    return True


class FastPathMiddleware:
    """Answers L1 hits of ``/v1/search``; passes everything else on untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == SEARCH_PATH
            and scope["method"] == "GET"
            and await answer_from_memory(scope, send)
        ):
            return
        await self.app(scope, receive, send)
