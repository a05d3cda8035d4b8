"""L3: a disk cache shared by the worker processes of one host, surviving restarts.

diskcache (SQLite index + files, safe across processes) with the
"least-recently-stored" policy: reads never write, so a hit costs one indexed
SQLite read and workers do not contend on a lock to record it. The byte
bound is diskcache's ``size_limit`` (culled on write). The SQLite busy wait is
short: a write that would wait longer is skipped, not queued.

A full, unwritable or broken disk is logged (once per interval) and skipped;
the level never raises into a request. Reads run inline: a hit from the
page cache takes tens of microseconds, less than a hand-off to a thread.

Most lookups here follow an L1 miss for a search never asked before, which
the disk cannot hold either: the level keeps the set of keys the folder may
hold (``HeldKeys``: read at open, added to by its own writes, caught up with
other processes' writes when SQLite says the file changed) and answers None
for any other key without a query (decision 0019).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import diskcache

from reelsearch.cache.base import LevelStats, storage_seconds
from reelsearch.cache.counters import CacheCounters
from reelsearch.cache.entry import CachedResponse, tags_of

log = logging.getLogger("reelsearch.cache")
T = TypeVar("T")
DISK_FAILURES = (OSError, sqlite3.Error, diskcache.Timeout)
# A failing disk is reported at most this often (seconds), not per request.
_LOG_EVERY = 30.0
# SQLite busy timeout for the cache's index: a write that waits longer is skipped.
_BUSY_SECONDS = 0.05
# How often at most (seconds) a lookup of an unknown key asks SQLite whether another
# process wrote: between checks an entry another worker just wrote may be missed
# (computed again here), never served stale.
CATCH_UP_SECONDS = 0.05
# A catch-up reads the keys stored since the last one minus this margin (seconds): a
# writer stamps ``store_time`` before its transaction commits.
_STORE_TIME_MARGIN = 5.0


class DiskLevel:
    """Entries as diskcache values (``CachedResponse.to_bytes`` blobs) with an expiry."""

    name = "disk"

    def __init__(
        self, path: str | Path, max_bytes: int, ttl: float, counters: CacheCounters
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.counters = counters
        self._logged_at = -_LOG_EVERY
        # Evictions are not reported by diskcache; counted as written - held - deleted
        # (this process's writes: an estimate when several processes share the folder).
        self._written = 0
        self._deleted = 0
        self.held = HeldKeys(self)
        self._cache: diskcache.Cache | None = self._guard(
            "open",
            lambda: diskcache.Cache(
                str(self.path),
                size_limit=max_bytes,
                eviction_policy="least-recently-stored",
                timeout=_BUSY_SECONDS,
                cull_limit=10,
                statistics=False,
                # No fsync (WAL checkpoints took up to 19 ms on the event loop, decision
                # 0030's trace). A process crash loses nothing; an OS crash may damage the
                # index, which then fails like a broken disk: logged and skipped.
                sqlite_synchronous=0,
            ),
            None,
        )
        self.held.reload()

    def _guard(self, what: str, run: Callable[[], T], default: T) -> T:
        try:
            return run()
        except DISK_FAILURES as exc:
            self.counters.level_errors[self.name] += 1
            now = time.monotonic()
            if now - self._logged_at >= _LOG_EVERY:
                self._logged_at = now
                log.warning("disk cache %s at %s failed, skipped: %s", what, self.path, exc)
            return default

    async def get(self, key: str) -> CachedResponse | None:
        cache = self._cache
        if cache is None or not self.held.may_hold(key):
            return None
        blob: Any = self._guard("get", lambda: cache.get(key, default=None, retry=False), None)
        if blob is None:
            self.held.forget(key)  # expired, evicted or deleted by another process
            return None
        try:
            entry = CachedResponse.from_bytes(bytes(blob))
        except ValueError as exc:
            log.warning("dropping a damaged disk entry %s: %s", key, exc)
            await self.delete(key)
            return None
        return entry if time.time() < entry.stale_until else None

    async def set(self, key: str, entry: CachedResponse) -> None:
        cache = self._cache
        keep = storage_seconds(entry, self.ttl, time.time())
        if cache is None or keep <= 0 or entry.size > self.max_bytes:
            return
        blob = entry.to_bytes()
        # The tags also go in diskcache's own tag column, so a write's invalidation
        # reads them with one SELECT instead of every blob (``scan_tags``).
        tags = " ".join(entry.tags)
        if self._guard(
            "set", lambda: cache.set(key, blob, expire=keep, tag=tags, retry=False), False
        ):
            self._written += 1
            self.held.add(key)

    async def delete(self, key: str) -> bool:
        cache = self._cache
        if cache is None:
            return False
        deleted = bool(self._guard("delete", lambda: cache.delete(key, retry=False), False))
        self._deleted += deleted
        self.held.forget(key)
        return deleted

    async def delete_tag(self, tag: str) -> int:
        """Scans every entry's tags: an admin operation, O(entries) by design (0011)."""
        cache = self._cache
        if cache is None:
            return 0
        removed = 0
        keys: list[str] = self._guard("scan", lambda: list(cache.iterkeys()), [])
        for key in keys:
            entry = await self.get(key)
            if entry is not None and tag in entry.tags and await self.delete(key):
                removed += 1
        return removed

    def scan_tags(self) -> list[tuple[str, tuple[str, ...]]]:
        """Every live entry's key and tags, from diskcache's tag column (one SELECT over
        the index, no blob read: a write's invalidation, never a request)."""
        cache = self._cache
        if cache is None:
            return []
        rows: list[tuple[Any, Any]] = self._guard(
            "scan",
            lambda: cache._sql(  # diskcache's own connection; public API has no tag scan
                "SELECT key, tag FROM Cache WHERE expire_time IS NULL OR expire_time > ?",
                (time.time(),),
            ).fetchall(),
            [],
        )
        found: list[tuple[str, tuple[str, ...]]] = []
        for key, tags in rows:
            if not isinstance(key, str):
                continue
            if not isinstance(tags, str):  # stored without tags: read the blob's header
                blob: Any = self._guard("get", partial(cache.get, key, retry=False), None)
                try:
                    tags = " ".join(tags_of(bytes(blob))) if blob is not None else ""
                except ValueError:
                    tags = "damaged"
            found.append((key, tuple(tags.split())))
        return found

    async def clear(self) -> None:
        cache = self._cache
        if cache is not None:
            self._deleted += self._guard("clear", lambda: cache.clear(retry=False), 0)
            self.held.reload()

    async def stats(self) -> LevelStats:
        cache = self._cache
        entries = self._guard("stats", lambda: len(cache), 0) if cache is not None else 0
        size = self._guard("stats", cache.volume, 0) if cache is not None else 0
        return LevelStats(
            name=self.name,
            entries=entries,
            bytes=size,
            limit_bytes=self.max_bytes,
            evictions=max(0, self._written - entries - self._deleted),
            errors=self.counters.level_errors[self.name],
        )

    def size(self) -> tuple[int, int]:
        """Entries and bytes on disk, for the metrics sampler: two reads of diskcache's own
        bookkeeping (its count and the database's pages plus the value files), no scan.
        Blocking file I/O: the sampler calls it in a thread."""
        cache = self._cache
        if cache is None:
            return 0, 0
        return self._guard("size", lambda: (len(cache), int(cache.volume())), (0, 0))

    async def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None


class HeldKeys:
    """The keys a ``DiskLevel``'s folder may hold, so a lookup of any other key costs a
    set lookup instead of a SQLite query.

    A superset: it is read whole at open (a restarted server answers from disk),
    each write of this process adds its key, and a key another process wrote is
    added by a catch-up. A lookup of an unknown key asks SQLite's ``data_version``
    (which changes when another connection commits) at most every
    ``CATCH_UP_SECONDS``, and if it changed reads the keys stored since the last
    catch-up (``store_time`` is indexed under the least-recently-stored policy).
    Keys deleted or evicted elsewhere stay until a read finds nothing: a wasted
    read, never a wrong answer. Any failure turns it off (every key "may" be held).
    """

    def __init__(self, level: DiskLevel) -> None:
        self.level = level
        self.keys: set[str] | None = None  # None: unknown, read the disk for every key
        self.catch_up_seconds = CATCH_UP_SECONDS
        self._checked_at = 0.0  # time.monotonic() of the last data_version check
        self._data_version: int | None = None
        self._stored_since = 0.0  # wall clock: the next catch-up reads from here
        self._limit = 0  # past this many keys the set is read again whole (drops the gone)

    def may_hold(self, key: str) -> bool:
        keys = self.keys
        if keys is None or key in keys:
            return True
        now = time.monotonic()
        if now - self._checked_at < self.catch_up_seconds:
            return False
        self._checked_at = now
        self.catch_up()
        return self.keys is None or key in self.keys

    def knows(self, key: str) -> bool:
        """Whether ``key`` is in the set (written or caught up here, not yet found gone);
        False when the set is off. No catch-up: a hint for skipping a rewrite."""
        keys = self.keys
        return keys is not None and key in keys

    def add(self, key: str) -> None:
        keys = self.keys
        if keys is not None:
            keys.add(key)
            if len(keys) > self._limit:
                self.reload()

    def forget(self, key: str) -> None:
        if self.keys is not None:
            self.keys.discard(key)

    def reload(self) -> None:
        """Read every key the folder holds (at open, after a clear, when the set grew)."""
        cache = self.level._cache
        if cache is None:
            self.keys = None
            return
        started = time.time()
        rows: list[tuple[Any]] | None = self.level._guard(
            "read keys", lambda: cache._sql("SELECT key FROM Cache").fetchall(), None
        )
        version = self._read_data_version(cache)
        if rows is None or version is None:
            self.keys = None
            return
        self.keys = {key for (key,) in rows if isinstance(key, str)}
        self._data_version = version
        self._stored_since = started - _STORE_TIME_MARGIN
        self._limit = 2 * len(self.keys) + 10_000

    def catch_up(self) -> None:
        """Add the keys other processes stored since the last catch-up, if any did."""
        cache = self.level._cache
        if cache is None or self.keys is None:
            return
        version = self._read_data_version(cache)
        if version is None:
            self.keys = None
            return
        if version == self._data_version:
            return
        started = time.time()
        since = self._stored_since
        rows: list[tuple[Any]] | None = self.level._guard(
            "read keys",
            lambda: cache._sql("SELECT key FROM Cache WHERE store_time >= ?", (since,)).fetchall(),
            None,
        )
        if rows is None:
            self.keys = None
            return
        self.keys.update(key for (key,) in rows if isinstance(key, str))
        self._data_version = version
        self._stored_since = started - _STORE_TIME_MARGIN
        if len(self.keys) > self._limit:
            self.reload()

    def _read_data_version(self, cache: diskcache.Cache) -> int | None:
        row: tuple[int] | None = self.level._guard(
            "data version", lambda: cache._sql("PRAGMA data_version").fetchone(), None
        )
        return int(row[0]) if row is not None else None
