"""``ResultCache``: the levels in order, freshness, single-flight, invalidation and warming.

A lookup tries each level, fastest first, and copies a found entry into the
faster ones. A fresh entry is a hit; one past its freshness but within its
staleness window is served while one background refresh recomputes it; else
the answer is computed once (single-flight) and stored in every level.

Keys carry the catalog's identity: when a process starts answering from a
new catalog (or new relevance rules), its keys change, so nothing computed on
the old one is read again; its L1 is dropped at once to free the memory, and
the popular searches are recomputed in the background. Admin invalidations
(by key, tag or everything) act on the shared levels once and reach every
process's L1 through Redis pub/sub.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from pathlib import Path
from typing import Any, Literal

from reelsearch.cache.base import CacheLevel
from reelsearch.cache.counters import CacheCounters
from reelsearch.cache.disk import DiskLevel
from reelsearch.cache.entry import CachedResponse, TagSource, strong_etag
from reelsearch.cache.invalidating import Invalidating
from reelsearch.cache.invalidation import DocCount
from reelsearch.cache.keys import KeyContext, RulesVersion, read_imported_at
from reelsearch.cache.memory import MemoryLevel
from reelsearch.cache.redis import RedisGuard, RedisLevel, open_redis
from reelsearch.cache.reporting import Reporting
from reelsearch.cache.singleflight import SingleFlight
from reelsearch.cache.tiers import MUST_AWAIT, Lookup, Tiers
from reelsearch.cache.warming import SearchLog
from reelsearch.cache.writes import (
    ChangeSource,
    WriteHistory,
)
from reelsearch.config import Settings

log = logging.getLogger("reelsearch.cache")
Compute = Callable[[], Awaitable[CachedResponse]]
# The fast path's map from a raw query string to its key is dropped when it grows past this.
MAX_ALIASES = 100_000


def disk_path(settings: Settings) -> Path:
    """Where L3 lives: the setting, else beside a SQLite catalog, else in the temp folder
    under a name derived from the database URL (one cache per catalog per host)."""
    if settings.cache_disk_path:
        return Path(settings.cache_disk_path)
    if settings.backend == "sqlite" and settings.sqlite_path != ":memory:":
        return Path(settings.sqlite_path + ".cache")
    digest = hashlib.blake2b(settings.database_url.encode(), digest_size=6).hexdigest()
    return Path(tempfile.gettempdir()) / f"reelsearch-cache-{digest}"


class ResultCache(Tiers, Invalidating, Reporting):
    """The configured levels and the rules for using them, one per worker process."""

    def __init__(
        self,
        settings: Settings,
        levels: list[CacheLevel],
        *,
        guard: RedisGuard | None,
        counters: CacheCounters,
        log_path: Path | None,
    ) -> None:
        self.settings = settings
        self.levels = levels
        self.memory = next((lv for lv in levels if isinstance(lv, MemoryLevel)), None)
        self.redis_level = next((lv for lv in levels if isinstance(lv, RedisLevel)), None)
        self.disk_level = next((lv for lv in levels if isinstance(lv, DiskLevel)), None)
        # Read on every lookup and store: L1 comes first (the settings' order), and what
        # comes after it.
        self._memory_first = self.memory is not None and levels[0] is self.memory
        self._below_memory = tuple(levels[1:] if self._memory_first else levels)
        # With Redis every miss is stored as before: the cross-process single-flight
        # and the shared level are what a scaled-out deployment keeps (decision 0039).
        self.doorkeeper = settings.cache_doorkeeper and self.redis_level is None
        self.guard = guard
        self.counters = counters
        self.namespace = settings.cache_namespace
        self.channel = f"{self.namespace}:invalidate"
        self.singleflight = SingleFlight(counters, guard if self.redis_level else None,
                                         self.namespace, settings.cache_lock_seconds)  # fmt: skip
        self.rules = RulesVersion()  # read from the engine once one is attached
        self.search_log = SearchLog(guard, self.namespace, log_path)
        self.context: KeyContext | None = None
        self.prefix = b""
        # The catalog version the engine serves that this cache has caught up with:
        # its keys' version (an import) or a later one reached by writes.
        self.engine_version: int | None = None
        self.writes = WriteHistory()
        # Set by the app when the catalog logs its writes (the documents API):
        # without one, a new version re-keys the cache as an import does.
        self.change_source: ChangeSource | None = None
        # How many titles hold a word now (the engine's vocabulary), for precision.
        self.doc_count: DocCount | None = None
        # raw query string -> key, for the fast path (valid, cacheable requests only)
        self.aliases: dict[bytes, str] = {}
        self.process_id = os.urandom(6).hex()
        self._context_lock = asyncio.Lock()
        self._refreshing: set[str] = set()
        self._background: set[asyncio.Task[Any]] = set()
        # Set by the app: runs one logged query string through the cache (warming).
        self.warm_one: Callable[[bytes], Awaitable[bool]] | None = None

    @classmethod
    def open(cls, settings: Settings, counters: CacheCounters | None = None) -> ResultCache | None:
        """The cache the settings ask for, or None when it is off."""
        names = settings.cache_levels
        if not names:
            return None
        counters = counters or CacheCounters()
        guard = None
        if settings.redis_url:
            client = open_redis(settings.redis_url, timeout=settings.redis_timeout,
                                pool_size=settings.redis_pool_size)  # fmt: skip
            guard = RedisGuard(client, settings.redis_retry_seconds, counters)
        levels: list[CacheLevel] = []
        log_path = None
        for name in names:
            if name == "memory":
                levels.append(MemoryLevel(settings.cache_memory_bytes, settings.cache_memory_ttl,
                                          admission=settings.cache_admission,
                                          counters=counters))  # fmt: skip
            elif name == "redis" and guard is not None:
                levels.append(RedisLevel(guard, settings.cache_redis_ttl, settings.cache_namespace))
            elif name == "disk":
                path = disk_path(settings)
                levels.append(DiskLevel(path, settings.cache_disk_bytes, settings.cache_disk_ttl,
                                        counters))  # fmt: skip
                log_path = path / "searchlog.json"
        return cls(settings, levels, guard=guard, counters=counters, log_path=log_path)

    # -- versions ------------------------------------------------------------

    def is_current(self, catalog_version: int) -> bool:
        context = self.context
        return (
            context is not None
            and self.engine_version == catalog_version
            and context.rules_version == self.rules.read()  # (current(), one frame less)
        )

    async def ensure_current(
        self, catalog_version: int, imported_at: str | None = None
    ) -> KeyContext:
        """The key context for the catalog this process now answers from; its import
        time as the engine's snapshot read it, or (None) read from the catalog here."""
        if self.is_current(catalog_version):
            assert self.context is not None
            return self.context
        async with self._context_lock:
            if self.is_current(catalog_version):
                assert self.context is not None
                return self.context
            previous = self.context
            if imported_at is None:
                imported_at = await read_imported_at(self.settings)
            if await self._follow_writes(previous, catalog_version, imported_at):
                self.engine_version = catalog_version
                assert previous is not None
                return previous
            context = KeyContext(catalog_version, imported_at, self.rules.current(),
                                 self.namespace)  # fmt: skip
            self.context, self.prefix = context, context.prefix
            self.engine_version = catalog_version
            self.writes.reset(catalog_version)
            self.aliases = {}
            if self.memory is not None:
                self.memory.drop_all()  # every entry in it was made for the old context
            if previous is not None:
                cause = "catalog" if previous.catalog_version != catalog_version else "rules"
                self.counters.invalidations[cause] += 1
                log.info("cache: now keyed to catalog %d (%s changed)", catalog_version, cause)
                self.start_warming()
            return context

    # -- lookups -------------------------------------------------------------

    def remember_alias(self, query_string: bytes, key: str) -> None:
        aliases = self.aliases
        if len(aliases) >= MAX_ALIASES:
            aliases.clear()
        aliases[query_string] = key

    async def get_or_compute(self, key: str, compute: Compute) -> CachedResponse:
        now = time.time()
        return await self.answer_looked_up(key, self.lookup_now(key, now), now, compute)

    async def answer_looked_up(
        self,
        key: str,
        entry: CachedResponse | None | Literal[Lookup.AWAIT],
        now: float,
        compute: Compute,
    ) -> CachedResponse:
        """The rest of ``get_or_compute`` given what ``lookup_now`` found at ``now``."""
        if entry is MUST_AWAIT:
            entry = await self._lookup_below_memory(key, now)
        if entry is not None:
            if now < entry.fresh_until:
                return entry
            if now < entry.stale_until:
                self.counters.stale_served += 1
                self._refresh_later(key, compute)
                return entry
        self.counters.misses += 1
        return await self._compute_once(key, compute)

    def flight_of(self, key: str) -> str:
        """The single-flight key of a computation of ``key`` starting now: one per catalog
        write applied, so a request arriving after a write is never handed the answer
        of a search that started before it."""
        return f"{key}@{self.writes.applied}" if self.writes.applied else key

    def store_computed(self, key: str, entry: CachedResponse) -> None:
        """Store an answer this process has just computed: in L1 now, in the levels
        below it (here: the disk, for a search asked before) after the response is
        sent, not before (a disk write is ~0.3 ms)."""
        self.counters.computed += 1
        for level in self._store_now(key, entry, everywhere=False):
            self._spawn(level.set(key, entry))

    async def _compute_once(self, key: str, compute: Compute) -> CachedResponse:
        flight = self.flight_of(key)
        shared = self.redis_level
        if shared is not None:
            return await self._compute_shared(shared, flight, key, compute)
        # In this process alone: the single-flight inline, no coroutine of its own.
        singleflight = self.singleflight
        running = singleflight.claim(flight)
        if running is not None:
            return await asyncio.shield(running)
        try:
            entry = await compute()
            self.store_computed(key, entry)
        except BaseException as exc:
            singleflight.fail(flight, exc)
            raise
        singleflight.settle(flight, entry)
        return entry

    async def _compute_shared(
        self, shared: CacheLevel, flight: str, key: str, compute: Compute
    ) -> CachedResponse:
        """``_compute_once`` with Redis: one computation per key across processes."""

        async def compute_and_store() -> CachedResponse:
            entry = await compute()
            self.counters.computed += 1
            await self.store(key, entry)
            return entry

        async def fetch() -> CachedResponse | None:
            found = await shared.get(key)
            return None if found is None or self._reached_by_writes(found) else found

        return await self.singleflight.run(flight, compute_and_store, fetch)

    def _refresh_later(self, key: str, compute: Compute) -> None:
        """Recompute a stale entry once in the background; later stale hits do not wait."""
        if key in self._refreshing:
            return
        self._refreshing.add(key)

        async def refresh() -> None:
            try:
                self.counters.refreshes += 1
                await self._compute_once(key, compute)
            except Exception as exc:  # the stale entry keeps serving; the next miss retries
                log.warning("cache refresh failed: %s", exc)
            finally:
                self._refreshing.discard(key)

        self._spawn(refresh())

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def make_entry(
        self,
        body: bytes,
        tags: tuple[str, ...] | TagSource,
        now: float,
        *,
        computed_on: int | None = None,
    ) -> CachedResponse:
        """A new entry for ``body``: fresh for the TTL +/- jitter, then stale for a while.

        ``tags`` may be a function making them, called when first needed (a write's
        invalidation, a store in Redis or on disk); ``computed_on`` is then the catalog
        version the answer was computed on (its ``v:`` tag).
        """
        settings = self.settings
        jitter = settings.cache_ttl_jitter
        fresh = settings.cache_ttl * (1 + jitter * (2 * random.random() - 1))
        made, source = ((), tags) if callable(tags) else (tags, None)  # as new_entry, inline
        return CachedResponse(
            body, strong_etag(body), self.last_modified(now),
            now, now + fresh, now + fresh + settings.cache_stale_seconds, made,
            tag_source=source, computed_on=computed_on,
        )  # fmt: skip

    def last_modified(self, now: float) -> str:
        """The Last-Modified of an answer computed at ``now``: the catalog's import time,
        or "" when it is unknown."""
        if self.writes.applied != self.writes.floor:
            # Written to since the import: the import time no longer bounds when this
            # answer last changed (If-Modified-Since must not 304 past a write), its
            # computation time does: a write that reaches it drops it.
            return formatdate(now, usegmt=True)
        context = self.context
        return context.last_modified if context is not None else ""

    # -- warming -------------------------------------------------------------

    def start_warming(self) -> None:
        warm_one = self.warm_one
        if warm_one is None or self.settings.cache_warm_top == 0:
            return
        from reelsearch.cache.warming import warm

        async def run() -> None:
            top = await self.search_log.top(self.settings.cache_warm_top)
            ran = await warm(top, warm_one, self.settings.cache_warm_cpu_share)
            self.counters.warmed += ran
            if ran:
                log.info("cache: warmed %d of the %d most asked searches", ran, len(top))

        self._spawn(run())

    async def flush_search_log(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            await self.search_log.flush()
