"""Reporting and shutdown: level sizes for the metrics, stats for the admin endpoint, close.

The part of ``ResultCache`` (a mixin of it) that reads what the levels hold and
what the counters say, and closes the levels and the Redis client.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from reelsearch.cache.base import CacheLevel
from reelsearch.cache.counters import CacheCounters
from reelsearch.cache.disk import DiskLevel
from reelsearch.cache.keys import KeyContext
from reelsearch.cache.memory import MemoryLevel
from reelsearch.cache.redis import RedisGuard, RedisLevel
from reelsearch.cache.warming import SearchLog
from reelsearch.cache.writes import WriteHistory


class Reporting:
    """Sizes, stats and shutdown; mixed into ``ResultCache``, whose attributes it uses."""

    levels: list[CacheLevel]
    memory: MemoryLevel | None
    redis_level: RedisLevel | None
    disk_level: DiskLevel | None
    guard: RedisGuard | None
    counters: CacheCounters
    process_id: str
    context: KeyContext | None
    engine_version: int | None
    writes: WriteHistory
    search_log: SearchLog
    _background: set[asyncio.Task[Any]]

    def level_sizes(self) -> dict[str, dict[str, int]]:
        """Per level: evictions (a total) and, for L1, entries and bytes; read without a
        call to Redis or the disk, for the metrics sampler (their sizes are in ``stats``)."""
        sizes = {name: {"evictions": n} for name, n in self.counters.evictions.items()}
        if self.memory is not None:
            sizes.setdefault(self.memory.name, {}).update(
                entries=len(self.memory), bytes=self.memory.bytes_used
            )
        return sizes

    async def shared_level_sizes(self) -> dict[str, dict[str, int]]:
        """Entries and bytes of the levels shared by the processes (Redis, disk), for the
        metrics sampler every few ticks: a scan of Redis's namespace, diskcache's counts."""
        sizes: dict[str, dict[str, int]] = {}
        redis_size = await self.redis_level.size() if self.redis_level is not None else None
        if redis_size is not None:  # None while Redis is down: the last reading stands
            sizes["redis"] = {"entries": redis_size[0], "bytes": redis_size[1]}
        if self.disk_level is not None:
            entries, size = await asyncio.to_thread(self.disk_level.size)
            sizes[self.disk_level.name] = {"entries": entries, "bytes": size}
        return sizes

    async def stats(self) -> dict[str, Any]:
        levels = [await level.stats() for level in self.levels]
        counters = self.counters.as_dict()
        hits = sum(self.counters.hits.values())
        asked = hits + self.counters.misses + self.counters.stale_served
        return {
            "levels": [
                {
                    "name": s.name,
                    "entries": s.entries,
                    "bytes": s.bytes,
                    "limit_bytes": s.limit_bytes,
                    "evictions": s.evictions,
                    "errors": s.errors,
                }
                for s in levels
            ],  # fmt: skip
            "process": self.process_id,
            "hit_rate": round(hits / asked, 4) if asked else None,
            # The version answered from (writes included) and the one the keys name.
            "catalog_version": self.engine_version,
            "keys_version": self.context.catalog_version if self.context else None,
            "writes_applied": self.writes.applied,
            **counters,
        }

    async def close(self) -> None:
        background = list(self._background)
        for task in background:
            task.cancel()
        # Waited for: a refresh holding a pool connection gives it back before the
        # engine closes, not when the collector finds it after the loop has stopped.
        await asyncio.gather(*background, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.search_log.flush()
        for level in self.levels:
            await level.close()
        if self.guard is not None:
            with contextlib.suppress(Exception):
                await self.guard.client.aclose(close_connection_pool=True)
