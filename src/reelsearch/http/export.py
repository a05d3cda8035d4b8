"""``GET /v1/search/export``: every match of a search as NDJSON, streamed.

Pages of ``EXPORT_PAGE`` hits are read one at a time and written as they
come: memory holds one page whatever the result size, and each ``send``
waits for the server to take the bytes (backpressure: a slow reader slows
the reads). Compressed on the fly when the client accepts a coding; each page
is flushed so a reader sees rows as they are produced.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from reelsearch.cache.compression import stream_compressor
from reelsearch.errors import InvalidRequest
from reelsearch.http.caching import NOT_ACCEPTABLE_BODY, choose_encoding
from reelsearch.http.params import query_pairs
from reelsearch.search.engine import SearchEngine, SearchResult
from reelsearch.search.query import MAX_LIMIT, SearchQuery, parse_search

EXPORT_PAGE = MAX_LIMIT
# Later pages grow, doubling, up to this many hits. A relevance page ranks every match
# before its offset: pages of a fixed 100 cost the square of the export's size (1.1 s
# of CPU for the 11,804 matches of "the" on the sample), pages of 500 a third (0.4 s),
# while memory holds one page of at most this many (1,000 held 2.8-3.5 MB at the peak
# of the whole sample's export, 500 1.4 MB: tests/http/test_caching_export.py).
EXPORT_MAX_PAGE = 500
# Parameters that choose a page make no sense for an export of every page.
_PAGE_PARAMS = ("limit", "offset", "cursor", "facets", "explain")


async def _lines(
    engine: SearchEngine, query: SearchQuery, first: SearchResult
) -> AsyncIterator[bytes]:
    """One NDJSON chunk per page of hits, ``first`` and then each page read only when
    the previous one was taken; each page twice the last, up to ``EXPORT_MAX_PAGE``."""
    result, offset, limit = first, 0, EXPORT_PAGE
    while True:
        if result.hits:
            yield b"".join(orjson.dumps(hit) + b"\n" for hit in result.hits)
        if len(result.hits) < limit:
            return
        offset += limit
        limit = min(2 * limit, EXPORT_MAX_PAGE)
        result = await engine.search(replace(query, limit=limit, offset=offset))


async def export(request: Request) -> Response:
    pairs = query_pairs(request.scope["query_string"])
    for name, _ in pairs:
        if name in _PAGE_PARAMS:
            raise InvalidRequest(f"{name} does not apply to an export (it returns every match)",
                                 param=name)  # fmt: skip
    state = request.app.state
    query = parse_search(pairs, **state.settings.query_limits)
    engine: SearchEngine = state.engine
    accept = ", ".join(request.headers.getlist("accept-encoding"))  # repeated lines: one list
    encoding = choose_encoding(accept, compressible=True)
    if encoding is None:
        return Response(NOT_ACCEPTABLE_BODY, status_code=406, media_type="application/json")
    # The first page is read before the response starts: what the engine refuses (a
    # genre or kind the catalog lacks) is then a 4xx, not a 500 in a started stream.
    first = await engine.search(replace(query, limit=EXPORT_PAGE, offset=0))
    headers = {"vary": "accept-encoding", "cache-control": "no-store"}
    pages = _lines(engine, query, first)
    if encoding == "identity":
        return StreamingResponse(pages, media_type="application/x-ndjson", headers=headers)
    headers["content-encoding"] = encoding

    async def compressed() -> AsyncIterator[bytes]:
        compressor = stream_compressor(encoding)
        async for chunk in pages:
            yield compressor.compress(chunk) + compressor.sync()
        yield compressor.finish()

    return StreamingResponse(compressed(), media_type="application/x-ndjson", headers=headers)


EXPORT_ROUTES = [Route("/v1/search/export", export, methods=["GET"])]
