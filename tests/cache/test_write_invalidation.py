"""Movie writes against a warm result cache, in one process: real SQLite catalog, real
catalog writer (the documents API's transaction), real disk and Redis levels.

Every remaining entry is checked against a fresh search after each write: none may be
stale; and what no write reaches stays cached (decision 0015).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from reelsearch.cache.invalidation import MovieChange
from reelsearch.cache.keys import canonical_key, canonical_query
from reelsearch.cache.service import ResultCache
from reelsearch.catalog.documents import DeleteMovie, Operation, PutMovie
from reelsearch.catalog.records import MovieRecord
from reelsearch.catalog.writes import CatalogWriter
from reelsearch.config import Settings
from reelsearch.http.search_cache import SearchResponder, catalog_change_source
from reelsearch.search.backends import open_search_engine
from reelsearch.search.engine import SearchEngine
from reelsearch.search.query import SearchQuery, parse_search

# Words, prefixes, typos, whole titles, stop words, a cut query, filters only.
QUERIES = [
    "q=star ", "q=star", "q=sta", "q=star wars", "q=star+trek ", "q=toy ", "q=toy story 2",
    "q=matrix ", "q=matirx ", "q=the matrix", "q=the ", "q=the xyzzy", "q=casablanca ",
    "q=casablanka ", "q=alien ", "q=heat ", "q=se7en ", "q=seven ", "q=leon ", "q=mission ",
    "q=impossible ", "q=amelie ", "q=light ", "q=lightyear ", "q=express ", "q=soldiers ",
    "q=soldier", "q=night ", "genres=Drama", "genres=Comedy&sort=-rating", "year_from=2000",
    "facets=genres,decade", "q=star&facets=genres", "q=star&fields=title,year",
]  # fmt: skip
WRITES: list[list[Operation]] = [
    [PutMovie(MovieRecord("test:1", "Toy Soldiers", year=1991, votes=20_000))],
    [PutMovie(MovieRecord("imdb:tt0000030", "Starlight Express", year=2001, votes=300))],
    [DeleteMovie("imdb:tt0000021")],
    [PutMovie(MovieRecord("test:2", "Lightyear", year=2022, votes=90_000, genres=("Comedy",)))],
]


class Harness:
    """An engine, a cache following its writes, and the searches it holds."""

    def __init__(self, engine: SearchEngine, cache: ResultCache, settings: Settings) -> None:
        self.engine = engine
        self.cache = cache
        self.responder = SearchResponder(settings, cache, cache.counters)
        self.responder.engine = engine
        self.writer = CatalogWriter(settings)

    @staticmethod
    def query(query_string: str) -> SearchQuery:
        return canonical_query(parse_search(parse_qsl(query_string, keep_blank_values=True)))

    def key(self, query_string: str) -> str:
        return canonical_key(self.cache.prefix, self.query(query_string))

    async def warm(self) -> None:
        for query_string in QUERIES:
            await self.responder.warm_one(query_string.encode())

    async def write(self, operations: list[Operation]) -> None:
        """Write, then follow as a worker does: the engine's poll, then the cache."""
        report = await self.writer.write(operations)
        assert report.catalog_version is not None
        assert await self.engine.refresh_if_changed()
        await self.cache.ensure_current(self.engine.snapshot.version)

    async def fresh(self, query_string: str) -> bytes:
        return (await self.responder._compute(self.engine, self.query(query_string))).body

    async def held(self, query_string: str) -> dict[str, bytes]:
        """The body each level holds for the search."""
        found = {}
        for level in self.cache.levels:
            entry = await level.get(self.key(query_string))
            if entry is not None:
                found[level.name] = entry.body
        return found


async def harness_for(settings: Settings, **cache: object) -> AsyncIterator[Harness]:
    settings = replace(settings, cache_ttl=3600, cache_warm_top=0, **cache)  # type: ignore[arg-type]
    engine = await open_search_engine(settings)
    result_cache = ResultCache.open(settings)
    assert result_cache is not None
    result_cache.rules.read = engine.rules_version
    result_cache.doc_count = lambda word: engine.snapshot.vocabulary.doc_count(word)
    result_cache.change_source = catalog_change_source(engine)
    await result_cache.ensure_current(engine.snapshot.version)
    try:
        yield Harness(engine, result_cache, settings)
    finally:
        await result_cache.close()
        await engine.close()


@pytest.fixture
async def harness(small_copy: Settings, tmp_path: Path) -> AsyncIterator[Harness]:
    async for found in harness_for(small_copy, cache="memory,disk",
                                   cache_disk_path=str(tmp_path / "l3")):  # fmt: skip
        yield found


async def test_no_entry_is_stale_after_each_write_and_unreached_ones_stay(
    harness: Harness,
) -> None:
    """After each of four writes (a new title, a rename, a delete, a new title), every entry
    still held in memory or on disk equals a fresh search byte for byte; entries of searches
    no write touches ("casablanca", "mission") are still held at the end."""
    await harness.warm()
    for query_string in QUERIES:
        assert set(await harness.held(query_string)) == {"memory", "disk"}, query_string
    for operations in WRITES:
        await harness.write(operations)
        for query_string in QUERIES:
            fresh = await harness.fresh(query_string)
            for level, body in (await harness.held(query_string)).items():
                assert body == fresh, f"stale {query_string!r} in {level} after {operations}"
    for untouched in ("q=casablanca ", "q=mission ", "q=amelie ", "q=alien "):
        assert set(await harness.held(untouched)) == {"memory", "disk"}, untouched
    for reached in ("q=star ", "q=toy ", "q=se7en ", "genres=Drama", "q=lightyear ", "q=soldier"):
        assert await harness.held(reached) == {}, reached
    counters = harness.cache.counters
    assert counters.invalidations["write"] == len(WRITES)
    assert counters.invalidations["catalog"] == 0  # the keys were kept throughout


async def test_an_answer_computed_before_a_write_is_not_stored_after_it(
    harness: Harness,
) -> None:
    """A search that started before a write and finishes after the cache applied it is
    answered but kept by no level when the write reaches it; an unreached one is stored."""
    reached = await harness.responder._compute(harness.engine, harness.query("q=heat "))
    unreached = await harness.responder._compute(harness.engine, harness.query("q=casablanca "))
    await harness.write([PutMovie(MovieRecord("test:3", "Heat Wave", year=2020))])
    await harness.cache.store(harness.key("q=heat "), reached, everywhere=True)
    await harness.cache.store(harness.key("q=casablanca "), unreached, everywhere=True)
    assert await harness.held("q=heat ") == {}
    assert set(await harness.held("q=casablanca ")) == {"memory", "disk"}
    assert harness.cache.counters.invalidated_entries["write_on_store"] == 1


async def test_a_shared_entry_from_a_process_behind_the_write_is_not_served(
    small_copy: Settings, redis_url: str
) -> None:
    """An entry another process stored in Redis, computed before a write this process
    has applied, is dropped when read instead of served (that process had not yet
    followed the write)."""
    async for harness in harness_for(small_copy, cache="memory,redis", redis_url=redis_url):
        old = await harness.responder._compute(harness.engine, harness.query("q=heat "))
        await harness.write([PutMovie(MovieRecord("test:4", "Heat Wave", year=2020))])
        redis_level = harness.cache.redis_level
        assert redis_level is not None
        await redis_level.set(harness.key("q=heat "), old)  # the lagging process's store
        assert await harness.cache.lookup(harness.key("q=heat "), time.time()) is None
        assert await redis_level.get(harness.key("q=heat ")) is None
        assert harness.cache.counters.invalidated_entries["write_on_read"] == 1


async def test_a_write_reaches_another_cache_through_pubsub_before_its_engine_does(
    small_copy: Settings, redis_url: str
) -> None:
    """One process applies a write and publishes it; another process's L1 drops what the
    write reaches at once (before its own catalog poll), and keeps the rest."""
    async for one in harness_for(small_copy, cache="memory", redis_url=redis_url):
        async for two in harness_for(small_copy, cache="memory", redis_url=redis_url):
            listening = asyncio.ensure_future(two.cache.follow_invalidations())
            try:
                await two.warm()
                guard = one.cache.guard
                assert guard is not None
                deadline = time.monotonic() + 10
                while (await guard.client.pubsub_numsub(one.cache.channel))[0][1] < 1:
                    assert time.monotonic() < deadline, "the other cache never subscribed"
                    await asyncio.sleep(0.05)
                await one.write([PutMovie(MovieRecord("test:5", "Heat Wave", year=2020))])
                deadline = time.monotonic() + 5
                while two.cache.writes.applied < one.engine.snapshot.version:
                    assert time.monotonic() < deadline, "the write never reached the other"
                    await asyncio.sleep(0.02)
                assert await two.held("q=heat ") == {}
                assert set(await two.held("q=casablanca ")) == {"memory"}
                assert two.engine.snapshot.version < one.engine.snapshot.version
            finally:
                listening.cancel()


async def test_writes_announced_with_a_gap_are_left_to_the_catalog_poll(
    harness: Harness,
) -> None:
    """A message naming writes after a version this process has not applied yet is not
    applied (it would mark the missing writes applied): the process's poll reads them
    all from the catalog's log instead, and then drops what they reach."""
    await harness.warm()
    base = harness.cache.writes.applied
    await harness.writer.write([PutMovie(MovieRecord("test:6", "Heat Wave", year=2020))])
    report = await harness.writer.write([PutMovie(MovieRecord("test:7", "Casablanca Nights"))])
    assert report.catalog_version == base + 2
    only_second = [MovieChange(base + 2, 99, frozenset(), frozenset({"casablanca", "nights"}))]
    dropped = await harness.cache.apply_writes(base + 2, only_second, since=base + 1)
    assert dropped == 0 and harness.cache.writes.applied == base
    assert await harness.engine.refresh_if_changed()
    await harness.cache.ensure_current(harness.engine.snapshot.version)
    assert harness.cache.writes.applied == base + 2
    assert await harness.held("q=heat ") == {} and await harness.held("q=casablanca ") == {}
