"""L1: the per-process cache, LRU order with a byte bound and TinyLFU-style admission.

On a Zipf stream most queries are asked once. Plain LRU lets each of them
push a popular answer out; with admission a new entry only displaces the
least recently used one if it has been asked for more often (a frequency
count kept for many more keys than the cache holds, halved periodically so
old popularity fades). bench/zipf_policies.py measures both on a Zipf(1.1)
stream; docs/decisions/0011-result-cache.md has the figures.

The hot path (``lookup``) is synchronous: the fast-path middleware answers
from it without an await.

What L1 holds is out of the garbage collector's view (``cache/heap.py``,
``untrack``): each entry is a long-lived survivor, and a full collection walked
every one of them (decision 0029).
"""

from __future__ import annotations

import builtins
import time
from collections import OrderedDict

from reelsearch.cache.base import LevelStats
from reelsearch.cache.counters import CacheCounters
from reelsearch.cache.entry import CachedResponse
from reelsearch.cache.heap import untrack_new
from reelsearch.cache.invalidation import WORD_KINDS

# Frequencies are counted for this many times as many keys as the cache could
# hold at a typical entry size, then halved (TinyLFU's "reset"), which also
# bounds the table's size.
FREQUENCY_SAMPLE_FACTOR = 10
TYPICAL_ENTRY_BYTES = 4096


class MemoryLevel:
    """Entries in an ``OrderedDict`` (least recently used first), bounded in bytes."""

    name = "memory"

    def __init__(
        self,
        max_bytes: int,
        ttl: float,
        *,
        admission: str = "tinylfu",
        counters: CacheCounters | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.admission = admission
        self.counters = counters or CacheCounters()
        self._entries: OrderedDict[str, CachedResponse] = OrderedDict()
        # Each entry's storage deadline and counted size, beside it rather than in a tuple
        # with it: dicts of numbers are out of the collector's view by themselves, where a
        # tuple per entry had to be untracked by hand (a ctypes call, ~0.4 µs a miss).
        self._expires: dict[str, float] = {}
        self._sizes: dict[str, int] = {}
        self._bytes = 0
        self._frequency: dict[int, int] = {}
        self._sample = max(1000, FREQUENCY_SAMPLE_FACTOR * max_bytes // TYPICAL_ENTRY_BYTES)
        self._seen = 0

    # -- hot path ------------------------------------------------------------

    def lookup(self, key: str, now: float) -> CachedResponse | None:
        """The entry under ``key`` unless past its storage time; counts the request."""
        self._count(key)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now >= self._expires[key]:
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def _count(self, key: str) -> None:
        slot = hash(key)
        frequency = self._frequency
        frequency[slot] = frequency.get(slot, 0) + 1
        self._seen += 1
        if self._seen >= self._sample:
            self._age()

    def _age(self) -> None:
        """Halve every count and forget the zeros: yesterday's hits fade."""
        self._frequency = {k: v >> 1 for k, v in self._frequency.items() if v > 1}
        self._seen //= 2

    # -- the level interface -------------------------------------------------

    def frequency(self, key: str) -> int:
        """How often ``key`` was asked recently (the admission count)."""
        return self._frequency.get(hash(key), 0)

    async def get(self, key: str) -> CachedResponse | None:
        return self.lookup(key, time.time())

    async def set(self, key: str, entry: CachedResponse) -> None:
        self.put(key, entry, time.time())

    def put(self, key: str, entry: CachedResponse, now: float) -> bool:
        """Store ``entry`` if admitted; True if it is now held."""
        # storage_seconds(entry, self.ttl, now), inline: this runs on every miss.
        keep = entry.stale_until - now
        if keep > self.ttl:
            keep = self.ttl
        size = entry.size
        if keep <= 0 or size > self.max_bytes:
            return False
        entries = self._entries
        if key in entries:
            self._remove(key)
        if not self._make_room(key, size):  # True at once when it fits
            self.counters.rejected += 1
            return False
        entries[key] = entry
        self._expires[key] = now + keep
        self._sizes[key] = size
        # The entry is part of no reference cycle: it dies by reference count when
        # dropped, and no full collection walks it meanwhile.
        untrack_new(entry)  # (tracked: made by this miss, or by a level's read)
        self._bytes += size
        return True

    def _make_room(self, key: str, size: int) -> bool:
        """Evict least recently used entries until ``size`` fits, if admission allows."""
        if self._bytes + size <= self.max_bytes:
            return True
        frequency = self._frequency.get(hash(key), 0)
        victims: list[str] = []
        freed = 0
        for victim in self._entries:  # least recently used first
            if self.admission == "tinylfu" and self._frequency.get(hash(victim), 0) >= frequency:
                return False  # the candidate is no more popular than what it would evict
            victims.append(victim)
            freed += self._sizes[victim]
            if self._bytes - freed + size <= self.max_bytes:
                break
        for victim in victims:
            self._remove(victim)
            self.counters.evictions[self.name] += 1
        return True

    def _remove(self, key: str) -> None:
        del self._entries[key], self._expires[key]
        self._bytes -= self._sizes.pop(key)

    async def delete(self, key: str) -> bool:
        if key not in self._entries:
            return False
        self._remove(key)
        return True

    async def delete_tag(self, tag: str) -> int:
        """Scans the entries: no tag index is kept, since indexing a page's dozen tags on
        every store cost a fifth of a miss's overhead, and this runs only on invalidation."""
        keys = [key for key, entry in self._entries.items() if tag in entry.tags]
        for key in keys:
            self._remove(key)
        return len(keys)

    def word_tags(self) -> builtins.set[str]:
        """Every word tag some entry carries (``w:`` ``p:`` ``x:`` ``y:``): a write's
        matcher is asked once per distinct word, not once per entry."""
        return word_tags_of(self.held_entries())

    def held_entries(self) -> list[CachedResponse]:
        """The entries held now: a copy, so ``word_tags_of`` may read it in a worker
        thread (making pending tags there, not on the event loop) while requests
        change the level."""
        return list(self._entries.values())

    def drop_tagged(self, tags: builtins.set[str]) -> int:
        """Drop every entry carrying any of ``tags``; how many were dropped."""
        if not tags:
            return 0
        entries = self._entries.items()
        keys = [key for key, entry in entries if not tags.isdisjoint(entry.tags)]
        for key in keys:
            self._remove(key)
        return len(keys)

    async def clear(self) -> None:
        self.drop_all()

    def drop_all(self) -> None:
        self._entries.clear()
        self._expires.clear()
        self._sizes.clear()
        self._bytes = 0

    async def stats(self) -> LevelStats:
        return LevelStats(
            name=self.name,
            entries=len(self._entries),
            bytes=self._bytes,
            limit_bytes=self.max_bytes,
            evictions=self.counters.evictions[self.name],
            errors=0,
        )

    async def close(self) -> None:
        self.drop_all()

    @property
    def bytes_used(self) -> int:
        """The bytes its entries take now (what ``max_bytes`` bounds)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)


def word_tags_of(entries: list[CachedResponse]) -> builtins.set[str]:
    """The word tags (``w:`` ``p:`` ``x:`` ``y:``) ``entries`` carry, making pending ones."""
    found: builtins.set[str] = builtins.set()
    for entry in entries:
        found.update(entry.tags)
    return {tag for tag in found if tag[:2] in WORD_KINDS}
