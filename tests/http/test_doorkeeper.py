"""The result cache's doorkeeper (decision 0039): a search no level holds and the process
has not seen before is computed and sent as with the cache off, stored from its second
sighting, answered from L1 from its third.

A small app per test on a private copy of the small catalog; ``engine.search`` is
counted to show what was computed, L1 and the counters show what was stored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest

from conftest import TestClient
from redis_port import redis_url
from reelsearch.cache.service import ResultCache
from reelsearch.config import Settings
from reelsearch.http.app import create_app

# Headers a stored answer is sent with that a first sighting must carry the same way.
SAME_HEADERS = ("etag", "last-modified", "cache-control", "vary", "content-type")


class CountingApp:
    """A TestClient, its cache and the number of searches its engine ran."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.searches = 0
        state: Any = client.app.state  # type: ignore[attr-defined]
        self.cache: ResultCache = state.result_cache
        engine = state.engine
        original = engine.search

        async def counted(query: Any, deadline: Any = None) -> Any:
            self.searches += 1
            return await original(query, deadline)

        engine.search = counted

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, **kwargs)

    def counts(self) -> tuple[int, int, int, int, int]:
        """Searches run, misses, first sightings, computed for the cache, fast-path hits."""
        c = self.cache.counters
        return (self.searches, c.misses, c.first_sightings, c.computed, c.fast_path)


@pytest.fixture
def make_app(small_copy: Settings) -> Iterator[Callable[..., CountingApp]]:
    opened: list[TestClient] = []

    def make(**overrides: Any) -> CountingApp:
        chosen = {"cache": "memory,disk", "cache_warm_top": 0, "compress_min_bytes": 200}
        client = TestClient(create_app(replace(small_copy, **{**chosen, **overrides})))
        client.__enter__()
        opened.append(client)
        return CountingApp(client)

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def test_a_first_sighting_is_computed_and_not_stored(
    make_app: Callable[..., CountingApp],
) -> None:
    """One request for a new search: one search run, counted as a miss and a first
    sighting, nothing computed for the cache, nothing in L1, no alias for the fast path."""
    app = make_app()
    answer = app.get("/v1/search?q=alien")
    assert answer.status_code == 200 and answer.json()["total"] == 3
    assert app.counts() == (1, 1, 1, 0, 0)
    assert (len(app.cache.memory), app.cache.aliases) == (0, {})  # type: ignore[arg-type]


def test_the_second_sighting_is_stored_and_the_third_is_a_hit(
    make_app: Callable[..., CountingApp],
) -> None:
    """Three requests for one search: the first computed alone, the second computed and
    stored, the third a fast-path hit; the same bytes each time, two searches in all."""
    app = make_app()
    answers = [app.get("/v1/search?q=alien") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert len({a.content for a in answers}) == 1
    assert app.counts() == (2, 2, 1, 1, 1)
    assert len(app.cache.memory) == 1  # type: ignore[arg-type]


def test_spellings_of_one_search_are_one_sighting_each(
    make_app: Callable[..., CountingApp],
) -> None:
    """The doorkeeper counts the canonical search, not the spelling: a second spelling
    is the second sighting (stored), a third spelling is answered from L1."""
    app = make_app()
    spellings = ["q=Star+Wars", "q=star++wars", "limit=10&q=STAR%20WARS"]
    answers = [app.get(f"/v1/search?{s}") for s in spellings]
    assert len({a.content for a in answers}) == 1
    assert app.counts() == (2, 2, 1, 1, 0)  # the third: routed (a new spelling), an L1 hit
    assert app.cache.counters.hits["memory"] == 1


def test_a_first_sighting_has_the_headers_of_a_stored_answer(
    make_app: Callable[..., CountingApp],
) -> None:
    """The first answer (not stored) and the third (an L1 hit) carry the same ETag,
    Last-Modified, Cache-Control, Vary and Content-Type."""
    app = make_app()
    plain = {"accept-encoding": "identity"}
    first, _, third = (app.get("/v1/search?q=matrix", headers=plain) for _ in range(3))
    assert app.cache.counters.fast_path == 1
    assert first.headers["last-modified"] != ""
    assert [first.headers[h] for h in SAME_HEADERS] == [third.headers[h] for h in SAME_HEADERS]


def test_a_conditional_first_sighting_gets_a_304(make_app: Callable[..., CountingApp]) -> None:
    """A client that has the answer from another process asks with its ETag: a first
    sighting here is computed, answered 304 without a body, and not stored."""
    etag = make_app().get("/v1/search?q=alien").headers["etag"]
    app = make_app()
    answer = app.get("/v1/search?q=alien", headers={"if-none-match": etag})
    assert (answer.status_code, answer.content, answer.headers["etag"]) == (304, b"", etag)
    assert app.counts() == (1, 1, 1, 0, 0)


def test_a_compressed_first_sighting(make_app: Callable[..., CountingApp]) -> None:
    """A client taking gzip gets a first sighting gzipped, the ETag of the gzip variant
    a stored answer would send, and nothing is stored."""
    app = make_app()
    gzipped = {"accept-encoding": "gzip"}
    first, _, third = (app.get("/v1/search?q=the", headers=gzipped) for _ in range(3))
    assert first.headers["content-encoding"] == "gzip" and first.headers["etag"].endswith('-gzip"')
    assert (first.headers["etag"], first.content) == (third.headers["etag"], third.content)
    assert app.counts() == (2, 2, 1, 1, 1)


def test_without_the_doorkeeper_the_first_sighting_is_stored(
    make_app: Callable[..., CountingApp],
) -> None:
    """``cache_doorkeeper=False``: the first request is computed and stored, the second
    is a fast-path hit (one search)."""
    app = make_app(cache_doorkeeper=False)
    for _ in range(2):
        assert app.get("/v1/search?q=alien").status_code == 200
    assert app.counts() == (1, 1, 0, 1, 1)


def test_with_redis_every_miss_is_stored(small_copy: Settings) -> None:
    """With a Redis level the doorkeeper stays off: misses go through the cross-process
    single-flight and are stored as before."""
    settings = replace(small_copy, cache="memory,redis", redis_url=redis_url(13))
    cache = ResultCache.open(settings)
    assert cache is not None
    without_redis = ResultCache.open(replace(small_copy, cache="memory"))
    assert without_redis is not None
    doorkeepers = (cache.doorkeeper, without_redis.doorkeeper, settings.cache_doorkeeper)
    asyncio.run(cache.close())
    assert doorkeepers == (False, True, True)


def test_requests_arriving_during_a_first_sighting_wait_for_it(
    make_app: Callable[..., CountingApp],
) -> None:
    """Single-flight holds for a first sighting too: three requests for a new search at
    once run one search (the first, slowed here); the two that arrived meanwhile wait for
    it and get the same bytes, and, the search being asked three times, it is stored."""
    app = make_app()
    engine: Any = app.client.app.state.engine  # type: ignore[attr-defined]
    counted = engine.search

    async def slowed(query: Any, deadline: Any = None) -> Any:
        await asyncio.sleep(0.3)  # the others arrive while it runs
        return await counted(query, deadline)

    engine.search = slowed
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(app.get, "/v1/search?q=alien")
        time.sleep(0.1)
        others = [pool.submit(app.get, "/v1/search?q=alien") for _ in range(2)]
        answers = [first.result(), *(o.result() for o in others)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert len({a.content for a in answers}) == 1
    assert app.counts() == (1, 3, 1, 1, 0)
    assert app.cache.counters.singleflight_waits == 2
    assert len(app.cache.memory) == 1  # type: ignore[arg-type]
    assert app.get("/v1/search?q=alien").content == answers[0].content
    assert app.counts() == (1, 3, 1, 1, 1)  # the fourth: a fast-path hit
