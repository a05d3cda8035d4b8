"""``GET /v1/search`` as a plain ASGI endpoint: from the raw query string to the response.

A function endpoint costs, per call, Starlette's ``Request``, a pair of
exception-wrapping closures, ``app.state`` lookups (``State.__getattr__``) for
the settings, the responder and the instrumentation, and a ``Response``
object; a cold search then made a ``CachedResponse`` and built its header
block for one send. The route is instead ``Route("/v1/search",
SEARCH_ENDPOINT)``: Starlette hands an endpoint that is not a function the raw
``(scope, receive, send)``. What a search needs is gathered once per app start
into a ``SearchHandler`` (``app.state.search_handler``), and a search computed
with the result cache off is sent from a precomputed header block
(``EntrySender.send_computed``). docs/decisions/0020 has the figures.

Nothing a client sees changes: the same parsing and 400s (``parse_search``),
the same deadline and disconnect watch, the same stage metrics, the same
caching headers, ETag, 304 and content coding. An error raised before the
response starts is answered by the app's own exception handlers, exactly as
for a function endpoint (``answer_error``). With the result cache on, the
responder answers from the cache and a miss this request computed is sent from
the same lean header block (``send_fresh``, decision 0027); ``explain=true``
(admin) still builds a ``Request``, and its answer goes through the same content
coding negotiation as every other (``send_private``).
"""

from __future__ import annotations

import time
from typing import Any

from starlette._exception_handler import wrap_app_handling_exceptions
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from reelsearch.config import Settings
from reelsearch.http.admin import require_admin
from reelsearch.http.disconnect import unless_disconnected
from reelsearch.http.params import SearchParser
from reelsearch.http.search_cache import FirstSighting, SearchResponder, render_search
from reelsearch.observability.metrics import Metrics
from reelsearch.observability.stages import StageClock, stage_clock
from reelsearch.search.engine import SearchEngine
from reelsearch.search.query import SearchQuery

SEARCH_PATH = "/v1/search"


class SearchHandler:
    """Answers ``/v1/search`` for one app start: the limits, responder, engine and
    metrics are read from the app's state once, not per request."""

    __slots__ = ("engine", "metrics", "parse", "responder")

    def __init__(
        self,
        settings: Settings,
        responder: SearchResponder,
        engine: SearchEngine,
        metrics: Metrics | None,
    ) -> None:
        self.parse = SearchParser(settings.max_query_chars, settings.max_query_words)
        self.responder = responder
        self.engine = engine
        self.metrics = metrics

    async def answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        clock = stage_clock(scope, self.metrics, SEARCH_PATH)
        responder = self.responder
        try:
            query = self.parse(scope["query_string"])
            clock.lap("parse")
            if query.explain:
                body = await self._explained(scope, receive, query, clock)
            elif responder.cache is None:  # cold: computed for this request, never stored
                body = await responder.compute_uncached(self.engine, receive, query)
                clock.lap("engine")
            else:  # cached, conditional and compressed (http/search_cache.py)
                entry, computed_here = await responder.answer(scope, receive, query)
                clock.lap("engine")  # a stored answer, or one computed now
        except Exception as exc:
            await answer_error(scope, receive, send, exc)
            return
        head = scope["method"] == "HEAD"
        sender = responder.sender
        if query.explain:  # negotiated and compressed as any answer; stored by no cache
            await sender.send_private(send, body, scope["headers"], started, head=head)
        elif responder.cache is None:
            await sender.send_computed(send, body, scope["headers"], started, head=head)
        elif isinstance(entry, FirstSighting):  # computed, not stored (decision 0039)
            await sender.send_computed(
                send, entry.body, scope["headers"], started, head=head,
                last_modified=entry.last_modified,
            )  # fmt: skip
        elif computed_here:
            await sender.send_fresh(send, entry, scope["headers"], started, head=head)
        else:
            server_ms = (time.perf_counter() - started) * 1000
            await sender.send(send, entry, scope["headers"], server_ms, head=head)

    async def _explained(
        self, scope: Scope, receive: Receive, query: SearchQuery, clock: StageClock
    ) -> bytes:
        """The body of an explained search (the one kind that needs a ``Request``), never
        cached; the caller sends it (``EntrySender.send_private``)."""
        request = Request(scope, receive)
        # Admin-only: "Authorization: Bearer <REELSEARCH_ADMIN_TOKEN>".
        require_admin(request, "explain")
        engine = self.engine
        deadline = engine.deadline()
        result = await unless_disconnected(
            receive, deadline, lambda: engine.search(query, deadline)
        )
        clock.lap("engine")
        body = render_search(result)
        clock.lap("serialization")
        return body


class SearchEndpoint:
    """The route's ASGI app: hands the request to this app's ``SearchHandler``.

    One instance serves every app built in the process (``ROUTES`` is a module
    constant), so the handler is looked up per request on the app in the scope.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler: SearchHandler = scope["app"].state.search_handler
        await handler.answer(scope, receive, send)


SEARCH_ENDPOINT = SearchEndpoint()


async def answer_error(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    """Answer ``exc`` with the app's exception handlers, as Starlette does for a function
    endpoint (``request_response``); one no handler takes is raised on."""

    async def raise_it(scope: Scope, receive: Receive, send: Send) -> None:
        raise exc

    request = Request(scope, receive, send)
    answer: Any = wrap_app_handling_exceptions(raise_it, request)
    await answer(scope, receive, send)
