"""The one small interface every cache level implements.

A level stores ``CachedResponse`` objects under short string keys, bounded in
bytes, each entry kept at most ``ttl`` seconds (and never past its own
``stale_until``). A level that fails (Redis down, disk full) logs, answers
"not found" and carries on: the cache is an optimization, never a dependency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from reelsearch.cache.entry import CachedResponse


@dataclass(frozen=True, slots=True)
class LevelStats:
    """What a level holds against its bounds."""

    name: str
    entries: int
    bytes: int
    limit_bytes: int  # 0: bounded outside reelsearch (Redis maxmemory)
    evictions: int
    errors: int


class CacheLevel(Protocol):
    """A store of finished answers: memory (L1), Redis (L2) or disk (L3)."""

    name: str
    ttl: float

    async def get(self, key: str) -> CachedResponse | None:
        """The entry under ``key`` if present and not past its storage time."""
        ...

    async def set(self, key: str, entry: CachedResponse) -> None:
        """Store ``entry`` (the level may decline it: admission, size, failure)."""
        ...

    async def delete(self, key: str) -> bool:
        """Drop one entry; True if it was there."""
        ...

    async def delete_tag(self, tag: str) -> int:
        """Drop every entry carrying ``tag``; how many were dropped."""
        ...

    async def clear(self) -> None:
        """Drop everything this level holds for this deployment."""
        ...

    async def stats(self) -> LevelStats: ...

    async def close(self) -> None: ...


def storage_seconds(entry: CachedResponse, ttl: float, now: float) -> float:
    """How long a level keeps ``entry``: its own ttl, never past the entry's staleness."""
    return max(0.0, min(ttl, entry.stale_until - now))
