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
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from reelsearch.cache.service import ResultCache
from reelsearch.http.caching import EntrySender
from reelsearch.http.search_cache import SearchResponder
from reelsearch.observability.requests import SCOPE_CACHE

SEARCH_PATH = "/v1/search"


class MemoryAnswers:
    """Sends fresh L1 entries for ``GET /v1/search``; one per app.

    The cache, engine and responder are taken from ``app.state`` at the first
    request (the lifespan has put them there by then) and kept: Starlette's
    ``State`` looks attributes up through ``__getattr__``, a few hundred
    nanoseconds each, three times per hit.
    """

    __slots__ = ("_cache", "_engine", "_sender", "_ready")

    def __init__(self) -> None:
        self._ready = False
        self._cache: ResultCache | None = None
        self._engine: Any = None
        self._sender: EntrySender | None = None

    def _take_state(self, state: Any) -> None:
        cache: ResultCache | None = getattr(state, "result_cache", None)
        if cache is not None and cache.memory is not None:
            responder: SearchResponder = state.search_responder
            self._cache, self._engine, self._sender = cache, state.engine, responder.sender
        self._ready = True

    async def answer(self, scope: Scope, send: Send) -> bool:
        """Send the fresh L1 entry for this request, a ``GET /v1/search``; False (nothing
        sent) for any other request, or if there is none."""
        if scope["path"] != SEARCH_PATH or scope["method"] != "GET":
            return False
        started = time.perf_counter()
        if not self._ready:
            if not hasattr(scope["app"].state, "search_responder"):
                return False  # before the lifespan started the cache
            self._take_state(scope["app"].state)
        cache = self._cache
        if cache is None:
            return False
        query_string: bytes = scope["query_string"]
        key = cache.aliases.get(query_string)
        if key is None or not cache.is_current(self._engine.snapshot.version):
            return False
        now = time.time()
        entry = cache.memory.lookup(key, now)  # type: ignore[union-attr]
        if entry is None or now >= entry.fresh_until:  # the routed path refreshes stale ones
            return False
        cache.note_memory_hit(key, entry)
        counters = cache.counters
        counters.hits["memory"] += 1
        counters.fast_path += 1
        cache.search_log.record(query_string)
        scope[SCOPE_CACHE] = "hit"  # for the access line
        server_ms = (time.perf_counter() - started) * 1000
        await self._sender.send(send, entry, scope["headers"], server_ms)  # type: ignore[union-attr]
        return True


class FastPathMiddleware:
    """Answers L1 hits of ``/v1/search``; passes everything else on untouched."""

    def __init__(self, app: ASGIApp, answers: MemoryAnswers | None = None) -> None:
        self.app = app
        self.answers = answers if answers is not None else MemoryAnswers()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and await self.answers.answer(scope, send):
            return
        await self.app(scope, receive, send)
