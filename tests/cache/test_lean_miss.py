"""A miss through the embedded levels does its lookups, single-flight and store without a
coroutine or a future of its own (decision 0034), with the same outcomes: one computation
per key, waiters handed its answer or its error, a key the disk holds still read from it,
an answer a write reached while it was computed kept by no level, L1's byte count exact.
"""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from reelsearch.cache.counters import CacheCounters
from reelsearch.cache.entry import CachedResponse, new_entry
from reelsearch.cache.memory import MemoryLevel
from reelsearch.cache.singleflight import SingleFlight
from reelsearch.cache.tags import PageTags, search_tags
from reelsearch.catalog.documents import PutMovie
from reelsearch.catalog.records import MovieRecord
from reelsearch.config import Settings
from reelsearch.http.search_cache import page_tags

from .test_write_invalidation import Harness, harness_for


@pytest.fixture
async def harness(small_copy: Settings, tmp_path: Path) -> AsyncIterator[Harness]:
    """The embedded default levels (memory + disk) over a copy of the small catalog."""
    async for found in harness_for(small_copy, cache="memory,disk",
                                   cache_disk_path=str(tmp_path / "l3")):  # fmt: skip
        yield found


async def test_a_lone_computation_makes_no_future_and_waiters_share_one(
    make_entry: Callable[..., CachedResponse],
) -> None:
    """Alone, a computation leaves ``None`` in flight (no future made); a second caller
    for the same key makes the future, both get the one entry, the computation ran once,
    and the key is free again afterwards."""
    counters = CacheCounters()
    flight = SingleFlight(counters)
    entry = make_entry()
    release = asyncio.Event()
    runs: list[str] = []

    async def compute() -> CachedResponse:
        runs.append("k")
        await release.wait()
        return entry

    first = asyncio.ensure_future(flight.run("k", compute, None))
    await asyncio.sleep(0)
    assert {"k": None} == flight._inflight
    second = asyncio.ensure_future(flight.run("k", compute, None))
    await asyncio.sleep(0)
    assert isinstance(flight._inflight["k"], asyncio.Future)
    release.set()
    assert [entry, entry] == [await first, await second]
    assert (["k"], 1, {}) == (runs, counters.singleflight_waits, flight._inflight)


async def test_a_failed_computation_reaches_its_waiters_and_frees_the_key() -> None:
    """The error of a claimed computation is raised to the caller and to the one waiting
    on it, and the next caller computes afresh."""
    flight = SingleFlight(CacheCounters())
    release = asyncio.Event()

    async def fail() -> CachedResponse:
        await release.wait()
        raise RuntimeError("engine down")

    first = asyncio.ensure_future(flight.run("k", fail, None))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(flight.run("k", fail, None))
    await asyncio.sleep(0)
    release.set()
    for waiting in (first, second):
        with pytest.raises(RuntimeError, match="engine down"):
            await waiting
    assert {} == flight._inflight
    assert flight.claim("k") is None  # free: the caller computes


async def test_a_miss_does_not_read_the_disk_and_a_held_key_is_read_from_it(
    harness: Harness,
) -> None:
    """A key the disk never held is a miss without a disk read; an answer only the disk
    holds (L1 dropped) is found there, counted a disk hit and copied back into L1."""
    cache = harness.cache
    disk, memory = cache.disk_level, cache.memory
    assert disk is not None and memory is not None
    reads: list[str] = []
    real_get = disk.get

    async def counting_get(key: str) -> CachedResponse | None:
        reads.append(key)
        return await real_get(key)

    disk.get = counting_get  # type: ignore[method-assign]
    key = harness.key("q=alien ")
    assert await cache.lookup(key, time.time()) is None
    assert [] == reads
    await cache.store(key, await harness.responder._compute(harness.engine,
                                                          harness.query("q=alien ")),
                      everywhere=True)  # fmt: skip
    memory.drop_all()
    found = await cache.lookup(key, time.time())
    assert found is not None
    assert ([key], 1, 1) == (reads, cache.counters.hits["disk"], len(memory))


async def test_a_write_applied_while_a_miss_computes_keeps_its_answer_out_of_every_level(
    harness: Harness,
) -> None:
    """A miss whose search finishes after the cache applied a write reaching it answers
    the request with what it computed, and no level keeps it (``write_on_store``)."""
    cache, responder, engine = harness.cache, harness.responder, harness.engine
    key = harness.key("q=heat ")

    async def compute_across_a_write() -> CachedResponse:
        entry = await responder._compute(engine, harness.query("q=heat "))
        await harness.write([PutMovie(MovieRecord("test:5", "Heat Wave", year=2020))])
        return entry

    answered = await cache.get_or_compute(key, compute_across_a_write)
    assert b'"hits"' in answered.body
    assert {} == await harness.held("q=heat ")
    assert 1 == cache.counters.invalidated_entries["write_on_store"]


def test_l1_counts_exactly_the_bytes_of_what_it_holds(
    make_entry: Callable[..., CachedResponse],
) -> None:
    """Through puts, a replacement, evictions, an expiry and a delete, L1's byte count is
    the sum of the sizes it recorded for what it holds, and it records nothing else."""
    now = time.time()
    level = MemoryLevel(5 * make_entry(size=1000).size, 60, admission="lru")
    for i in range(8):  # the last ones evict the first ones
        assert level.put(f"k{i}", make_entry(size=1000), now)
    assert level.put("k7", make_entry(size=500), now)  # replaced, smaller
    assert level.lookup("k6", now + 61) is None  # past its storage time: dropped
    asyncio.run(level.delete("k5"))
    held = list(level._entries)
    assert ["k3", "k4", "k7"] == held
    assert (held, held) == (list(level._expires), list(level._sizes))
    assert sum(level._sizes.values()) == level.bytes_used
    assert [entry.size for entry in level.held_entries()] == list(level._sizes.values())


def test_a_tag_source_is_kept_pending_and_makes_the_tags_of_its_page() -> None:
    """A ``PageTags`` (a tuple, and callable) given to an entry is its pending source, not
    its tags; it makes ``search_tags``' tags, with the movies of a page that lists ids and
    with none when the page was asked without them."""
    from reelsearch.search.query import SearchQuery

    query = SearchQuery(words=("heat",), last_is_prefix=False, quoted=())

    class Result:
        all_words = True
        hits: list[dict[str, object]] = [{"id": 7, "title": "Heat"}, {"id": 3}]

    with_ids = page_tags(query, Result(), 4, None)  # type: ignore[arg-type]
    Result.hits = [{"title": "Heat"}]
    without = page_tags(query, Result(), 4, None)  # type: ignore[arg-type]
    assert isinstance(with_ids, PageTags)
    entry = new_entry(b"{}", with_ids, None, time.time(), 60.0, 60.0, computed_on=4)
    assert not entry.has_tags
    hits = [{"id": 7}, {"id": 3}]
    assert search_tags(query, hits, 4, None, all_words=True) == entry.tags
    assert ("v:4", "browse", "m:3", "m:7") == entry.tags
    assert ("v:4", "browse") == without()
