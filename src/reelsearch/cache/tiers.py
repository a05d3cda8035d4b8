"""Reading and writing the levels in order: the part of ``ResultCache`` (a mixin of it)
that a request's lookup and a miss's store go through.

A lookup tries each level, fastest first, and copies a found entry into the
faster ones; a store puts into L1 at once and writes the levels below it (the
disk only for searches L1 has seen twice). Both are synchronous as far as they
can be (decision 0034): the embedded default's miss — L1 does not hold the key
and the disk's held keys say it never wrote it — is answered without an await,
and a first sighting's store is one L1 put, so a miss makes no coroutine per
level, per lookup or per store.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, Literal

from reelsearch.cache.base import CacheLevel
from reelsearch.cache.counters import CacheCounters
from reelsearch.cache.disk import DiskLevel
from reelsearch.cache.entry import CachedResponse
from reelsearch.cache.memory import MemoryLevel

# Times L1 must have seen a key before its answer is written to disk.
DISK_ADMISSION_COUNT = 2


class Lookup(enum.Enum):
    """What ``lookup_now`` answers besides an entry or None."""

    AWAIT = "await"  # the lookup must read a level (Redis, or the disk): ``lookup_now``


MUST_AWAIT: Final = Lookup.AWAIT


class Tiers:
    """Lookups and stores across the levels; mixed into ``ResultCache``, whose
    attributes it uses."""

    levels: list[CacheLevel]
    memory: MemoryLevel | None
    disk_level: DiskLevel | None
    counters: CacheCounters
    _memory_first: bool  # L1 comes first (the settings' order)
    _below_memory: tuple[CacheLevel, ...]  # the levels after it (all, if it is not first)
    _reached_by_writes: Callable[[CachedResponse], bool]
    _spawn: Callable[[Awaitable[Any]], None]
    doorkeeper: bool  # first sightings are computed, not stored (settings.cache_doorkeeper)

    async def lookup(self, key: str, now: float) -> CachedResponse | None:
        """The entry from the fastest level holding it, copied into the faster ones."""
        found = self.lookup_now(key, now)
        if found is MUST_AWAIT:
            return await self._lookup_below_memory(key, now)
        return found

    def lookup_now(self, key: str, now: float) -> CachedResponse | None | Literal[Lookup.AWAIT]:
        """``lookup`` as far as it goes without awaiting: L1, and the levels below it that
        cannot hold ``key`` (the disk's held keys); ``MUST_AWAIT`` when a level must be read.

        The embedded default's miss (L1 and the disk's set both say no) is answered
        here, synchronously: no coroutine per level or per lookup."""
        memory = self.memory
        if self._memory_first:
            entry = memory.lookup(key, now)  # type: ignore[union-attr]
            if entry is not None:
                self.note_memory_hit(key, entry)
                if now < entry.fresh_until:
                    self.counters.hits["memory"] += 1
                return entry
        disk = self.disk_level
        for level in self._below_memory:
            if level is not disk or disk.held.may_hold(key):
                return MUST_AWAIT
            # else never written here: no coroutine, no SQLite (most misses)
        return None

    def is_first_sighting(self, key: str) -> bool:
        """Whether ``key``, just looked up and found in no level, is a search this process
        has not seen before: L1 has counted it once (this lookup), so its answer is not
        stored (the doorkeeper, decision 0039). On a stream of mostly one-off searches,
        a stored one-off is work and memory for an answer never asked again; a search
        asked twice is stored at its second sighting and a hit from its third.

        L1 halves its counts now and then (memory.py, ``_age``): a search asked once
        before that is seen as a first sighting again, a second computation, never a
        wrong answer."""
        memory = self.memory
        return self.doorkeeper and memory is not None and memory.frequency(key) <= 1

    async def _lookup_below_memory(self, key: str, now: float) -> CachedResponse | None:
        """The rest of ``lookup`` after ``lookup_now`` answered ``MUST_AWAIT``: the levels
        after L1 when it comes first (it was read), else all of them."""
        disk = self.disk_level
        start = 1 if self._memory_first else 0
        for index in range(start, len(self.levels)):
            level = self.levels[index]
            if level is self.memory:
                entry = level.lookup(key, now)
            elif level is disk and not disk.held.may_hold(key):
                continue
            else:
                entry = await level.get(key)
            if entry is None:
                continue
            if level is not self.memory and self._reached_by_writes(entry):
                # Stored by a process that had not yet followed a write this one has.
                self.counters.invalidated_entries["write_on_read"] += 1
                await level.delete(key)
                continue
            if now < entry.fresh_until:
                self.counters.hits[level.name] += 1
            for faster in self.levels[:index]:
                await faster.set(key, entry)
            return entry
        return None

    async def store(self, key: str, entry: CachedResponse, *, everywhere: bool = False) -> None:
        """Store in every level; the disk only for searches asked before (or ``everywhere``)."""
        for level in self._store_now(key, entry, everywhere=everywhere):
            await level.set(key, entry)

    def _store_now(
        self, key: str, entry: CachedResponse, *, everywhere: bool
    ) -> Sequence[CacheLevel]:
        """Store in L1 now (synchronous); the other levels to write, in order.

        A disk write costs more CPU than the search it saves on the sample catalog
        (diskcache: ~0.3 ms), and most misses on a Zipf stream are asked once: so only
        answers L1 has counted at least twice go to disk (bench/RESULTS.md).
        """
        if self._reached_by_writes(entry):
            # Computed before a write this process has applied, which may change it:
            # the requester gets it (it is what the engine said), no level keeps it.
            self.counters.invalidated_entries["write_on_store"] += 1
            return ()
        memory = self.memory
        if memory is not None:
            memory.put(key, entry, time.time())  # synchronous: no coroutine per store
        below: list[CacheLevel] | tuple[()] = ()  # no list made for the usual miss
        for level in self._below_memory:
            if level is memory:  # not first (levels given out of the usual order)
                continue
            if (
                level is self.disk_level
                and not everywhere
                and memory is not None
                and memory.frequency(key) < DISK_ADMISSION_COUNT
            ):
                continue
            if below:
                below.append(level)
            else:
                below = [level]
        return below

    def note_memory_hit(self, key: str, entry: CachedResponse) -> None:
        """The second time L1 sees a key, its answer is worth a disk write: do it off the
        response path (the first sighting, a one-off so far, was not written: ``store``).

        L1's counts are halved now and then (memory.py, ``_age``), so a key asked a few
        times comes back to the second sighting again and again on a long stream: a key
        the disk level already holds is not written again (on a Zipf stream of 10,000
        searches, ~800 rewrites per worker per 600,000 requests, ~0.3 ms each)."""
        disk, memory = self.disk_level, self.memory
        if (
            disk is not None
            and memory is not None
            and memory.frequency(key) == DISK_ADMISSION_COUNT
            and not disk.held.knows(key)
        ):
            self._spawn(disk.set(key, entry))
