"""L1 admission: one-off searches do not push popular answers out (TinyLFU), LRU lets them."""

from __future__ import annotations

import time

from reelsearch.cache.entry import CachedResponse
from reelsearch.cache.memory import MemoryLevel


def entry(now: float) -> CachedResponse:
    return CachedResponse(b"x" * 1000, '"x"', "", now, now + 60, now + 120)


def fill_with_popular_then_scan(admission: str) -> MemoryLevel:
    """10 popular keys asked 5 times each, then 100 keys asked once each."""
    now = time.time()
    level = MemoryLevel(10 * entry(now).size, 60, admission=admission)
    for _ in range(5):
        for n in range(10):
            if level.lookup(f"popular{n}", now) is None:
                level.put(f"popular{n}", entry(now), now)
    for n in range(100):
        if level.lookup(f"once{n}", now) is None:
            level.put(f"once{n}", entry(now), now)
    return level


def test_tinylfu_keeps_popular_entries_through_a_scan() -> None:
    """Under TinyLFU the 100 one-off keys are refused; all 10 popular ones stay."""
    level = fill_with_popular_then_scan("tinylfu")
    now = time.time()
    assert [level.lookup(f"popular{n}", now) is not None for n in range(10)] == [True] * 10
    assert level.counters.rejected == 100


def test_lru_loses_popular_entries_to_a_scan() -> None:
    """Plain LRU admits every one-off key and evicts all the popular ones."""
    level = fill_with_popular_then_scan("lru")
    now = time.time()
    assert not any(level.lookup(f"popular{n}", now) for n in range(10))
    assert level.counters.evictions["memory"] == 100


def test_a_new_key_asked_often_gets_in() -> None:
    """Admission is not a wall: a key asked more often than the eviction victim is admitted."""
    now = time.time()
    level = MemoryLevel(2 * entry(now).size, 60)
    level.put("a", entry(now), now)
    level.put("b", entry(now), now)
    for _ in range(3):
        level.lookup("c", now)
    assert level.put("c", entry(now), now) is True
    assert level.lookup("c", now) is not None and len(level) == 2
