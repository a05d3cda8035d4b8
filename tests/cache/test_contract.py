"""One contract for every cache level: memory (L1), Redis (L2), disk (L3).

The same tests run on each level (as cashews' backend command tests do), on
the real thing: an in-process dict, the local Redis server, a diskcache
folder in tmp_path.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from reelsearch.cache.base import CacheLevel
from reelsearch.cache.counters import CacheCounters
from reelsearch.cache.disk import DiskLevel
from reelsearch.cache.entry import CachedResponse
from reelsearch.cache.memory import MemoryLevel
from reelsearch.cache.redis import RedisGuard, RedisLevel, open_redis

LEVELS = ["memory", "redis", "disk"]
MakeLevel = Callable[..., CacheLevel]
MakeEntry = Callable[..., CachedResponse]


@pytest.fixture(params=LEVELS)
async def make_level(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MakeLevel]:
    """Builds a level of the parametrized kind with a given ttl and byte bound."""
    made: list[CacheLevel] = []
    kind = request.param
    redis_url = request.getfixturevalue("redis_url") if kind == "redis" else ""

    def make(ttl: float = 60.0, max_bytes: int = 1_000_000) -> CacheLevel:
        counters = CacheCounters()
        level: CacheLevel
        if kind == "memory":
            level = MemoryLevel(max_bytes, ttl, counters=counters)
        elif kind == "redis":
            guard = RedisGuard(open_redis(redis_url, timeout=1.0, pool_size=4), 1.0, counters)
            level = RedisLevel(guard, ttl, "test")
        else:
            level = DiskLevel(tmp_path / f"disk{len(made)}", max_bytes, ttl, counters)
        made.append(level)
        return level

    yield make
    for level in made:
        await level.close()
        if isinstance(level, RedisLevel):
            await level.guard.client.aclose(close_connection_pool=True)


async def test_set_then_get_returns_the_same_entry(
    make_level: MakeLevel, make_entry: MakeEntry
) -> None:
    """A stored entry comes back with the same body, validators, freshness, tags and variants."""
    level = make_level()
    entry = make_entry(b'{"hits":[]}' * 100, tags=("v:1", "w:alien", "m:7"))
    entry.variant("gzip")
    await level.set("k1", entry)
    found = await level.get("k1")
    assert found is not None
    assert (entry.body, entry.etag, entry.last_modified, entry.tags) == (
        found.body, found.etag, found.last_modified, found.tags
    )  # fmt: skip
    assert (entry.fresh_until, entry.stale_until) == (found.fresh_until, found.stale_until)
    assert entry.variants == found.variants and list(found.variants) == ["gzip"]


async def test_missing_key_is_none(make_level: MakeLevel) -> None:
    """A key never stored is not found."""
    assert await make_level().get("absent") is None


async def test_delete_drops_one_entry(make_level: MakeLevel, make_entry: MakeEntry) -> None:
    """delete drops the key (True), leaves others, and says False for a missing key."""
    level = make_level()
    await level.set("a", make_entry())
    await level.set("b", make_entry())
    assert await level.delete("a") is True
    assert await level.delete("a") is False
    assert await level.get("a") is None
    assert await level.get("b") is not None


async def test_delete_tag_drops_exactly_the_tagged(
    make_level: MakeLevel, make_entry: MakeEntry
) -> None:
    """delete_tag drops every entry with the tag and no other."""
    level = make_level()
    await level.set("a", make_entry(tags=("w:alien", "m:1")))
    await level.set("b", make_entry(tags=("w:alien", "m:2")))
    await level.set("c", make_entry(tags=("w:matrix", "m:1")))
    assert await level.delete_tag("w:alien") == 2
    assert [await level.get("a"), await level.get("b")] == [None, None]
    assert await level.get("c") is not None
    assert await level.delete_tag("m:1") == 1
    assert await level.delete_tag("m:404") == 0


async def test_clear_drops_everything(make_level: MakeLevel, make_entry: MakeEntry) -> None:
    """clear leaves the level empty."""
    level = make_level()
    for key in "abc":
        await level.set(key, make_entry())
    await level.clear()
    assert [await level.get(key) for key in "abc"] == [None, None, None]
    assert (await level.stats()).entries == 0


async def test_entry_is_gone_after_its_staleness(
    make_level: MakeLevel, make_entry: MakeEntry
) -> None:
    """An entry is kept no longer than fresh + stale seconds, whatever the level's ttl."""
    level = make_level(ttl=60.0)
    await level.set("short", make_entry(fresh=0.1, stale=0.1))
    assert await level.get("short") is not None
    await asyncio.sleep(0.3)
    assert await level.get("short") is None


async def test_level_ttl_bounds_storage(make_level: MakeLevel, make_entry: MakeEntry) -> None:
    """A level keeps an entry at most its own ttl, even if the entry is fresh for longer."""
    level = make_level(ttl=0.2)
    await level.set("k", make_entry(fresh=3600))
    assert await level.get("k") is not None
    await asyncio.sleep(0.35)
    assert await level.get("k") is None


async def test_stats_count_entries(make_level: MakeLevel, make_entry: MakeEntry) -> None:
    """stats report the level's name and how many entries it holds."""
    level = make_level()
    for key in ("a", "b", "c"):
        await level.set(key, make_entry(size=1000))
    stats = await level.stats()
    assert (level.name, 3) == (stats.name, stats.entries)
    assert stats.bytes > 0


async def test_byte_bound_holds_and_evicts(
    make_level: MakeLevel, make_entry: MakeEntry, request: pytest.FixtureRequest
) -> None:
    """Writing 4x a level's byte bound leaves it within the bound, with evictions counted."""
    level = make_level(max_bytes=200_000)
    if isinstance(level, RedisLevel):
        pytest.skip("Redis bounds its memory itself (maxmemory, a server setting)")
    if isinstance(level, MemoryLevel):
        level.admission = "lru"  # this test is about the bound, not admission
    for n in range(80):
        await level.set(f"k{n}", make_entry(size=10_000))
    stats = await level.stats()
    assert stats.bytes <= 200_000 + 20_000  # diskcache culls just after it passes the bound
    assert 0 < stats.entries < 80
    assert stats.evictions > 0
    assert await level.get("k79") is not None  # the newest is kept
    assert await level.get("k0") is None  # the oldest went first
