"""Following single-movie writes: what was applied, and dropping what they reach.

A write (the documents API) bumps the catalog version and logs a
``MovieChange`` per movie. The cache keeps its keys (they name the import,
not each write) and instead drops the entries a write reaches
(``cache/invalidation.py``), in three ways that together leave no stale
entry (decision 0015):

1. **At once**, when a process learns of the write (its own catalog poll, or
   Redis pub/sub from the process that did): its L1, and the shared levels
   (L2 by tag sets, L3 by a scan of the entries' tags).
2. **On store**: an answer computed on a catalog version older than the
   writes this process has applied is checked against them first, and not
   stored if they reach it (a search that started before the write).
3. **On read** from a shared level: an entry computed on an older version
   than this process has applied is checked the same way, and dropped if
   reached (another process, not yet following the write, stored it).

``WriteHistory`` holds the matchers of the writes applied since the keys were
made, so 2 and 3 can ask "did anything after version v reach these tags?".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from anyio import to_thread

from reelsearch.cache.base import CacheLevel
from reelsearch.cache.disk import DiskLevel
from reelsearch.cache.invalidation import (
    BROWSE,
    WORD_KINDS,
    ChangeLike,
    ChangeMatcher,
    MovieChange,
)
from reelsearch.cache.memory import MemoryLevel, word_tags_of
from reelsearch.cache.redis import RedisLevel

# Writes remembered for checks 2 and 3; an entry older than all of them is dropped.
MAX_REMEMBERED_WRITES = 1000
# (since, until) -> the changes with since < version <= until, or None when the
# log cannot tell (an import in between, a log cut short): then the cache re-keys.
ChangeSource = Callable[[int, int], Awaitable[Sequence[ChangeLike] | None]]


class WriteHistory:
    """The writes applied since the keys were made, newest last."""

    def __init__(self, base_version: int = 0) -> None:
        self.reset(base_version)

    def reset(self, base_version: int) -> None:
        """New keys (an import): nothing applied after ``base_version`` yet."""
        self.floor = base_version  # entries computed before this are never trusted
        self.applied = base_version  # the newest version whose writes are applied
        self._writes: list[tuple[int, ChangeMatcher]] = []

    def add(self, version: int, matcher: ChangeMatcher) -> None:
        self._writes.append((version, matcher))
        self.applied = max(self.applied, version)
        if len(self._writes) > MAX_REMEMBERED_WRITES:
            dropped, _ = self._writes.pop(0)
            self.floor = max(self.floor, dropped)

    def reaches(self, tags: Sequence[str], computed_on: int) -> bool:
        """Whether a write applied after version ``computed_on`` may change an entry with
        ``tags``; True for an entry older than the writes remembered."""
        if computed_on >= self.applied:
            return False  # also every entry while no write is applied since the keys

        if computed_on < self.floor:
            return True
        return any(v > computed_on and m.affects(tags) for v, m in self._writes)


async def drop_reached(levels: Sequence[CacheLevel], matcher: ChangeMatcher) -> int:
    """Drop from ``levels`` every entry ``matcher`` reaches; how many were dropped.

    The matcher runs in a worker thread (tens of milliseconds for ten thousand
    distinct words): the event loop keeps answering requests meanwhile.
    """
    dropped = 0
    always = {*matcher.movies, BROWSE, "damaged"}
    for level in levels:
        if isinstance(level, MemoryLevel):
            held = level.held_entries()
            reached = await to_thread.run_sync(
                lambda: matcher.reached_tags(word_tags_of(held))  # noqa: B023 - awaited here
            )
            dropped += level.drop_tagged(reached | always)
        elif isinstance(level, RedisLevel):
            reached = await to_thread.run_sync(matcher.reached_tags, await level.word_tags())
            dropped += await level.delete_tags(sorted(reached | always))
        elif isinstance(level, DiskLevel):
            entries = await to_thread.run_sync(level.scan_tags)
            words = {tag for _, tags in entries for tag in tags if tag[:2] in WORD_KINDS}
            reached = await to_thread.run_sync(matcher.reached_tags, words) | always
            for key, entry_tags in entries:
                if not reached.isdisjoint(entry_tags) and await level.delete(key):
                    dropped += 1
    return dropped


def changes_message(since: int, version: int, changes: Sequence[ChangeLike]) -> dict[str, Any]:
    """The writes after ``since`` up to ``version`` as a pub/sub message (words sorted)."""
    return {
        "write": version,
        "since": since,
        "changes": [
            [c.version, c.movie_id, sorted(c.words_before), sorted(c.words_after)] for c in changes
        ],
    }


def changes_from_message(message: dict[str, Any]) -> tuple[int, int, list[MovieChange]] | None:
    """``(since, version, changes)`` of a ``changes_message``; None for another shape."""
    try:
        version, since = int(message["write"]), int(message["since"])
        changes = [
            MovieChange(int(v), movie, frozenset(map(str, before)), frozenset(map(str, after)))
            for v, movie, before, after in message["changes"]
        ]
    except (KeyError, TypeError, ValueError):
        return None
    return since, version, changes
