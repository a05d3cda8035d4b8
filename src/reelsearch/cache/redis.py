"""L2: Redis, shared by every process and host, and the client the other Redis features use.

Every call has a short deadline (``redis_timeout``). A failure marks Redis
down for ``redis_retry_seconds``: meanwhile the level answers "not found"
without trying, so no request waits on a dead or slow Redis more than once
per interval, and the first call after it reconnects through the pool.

Its byte bound is Redis's own: ``maxmemory`` with an LRU/LFU policy, a
server setting (README: "Result cache"). Entries carry a TTL; tag sets
(``<ns>:t:<tag>``) list the keys carrying a tag, for targeted invalidation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from reelsearch.cache.base import LevelStats, storage_seconds
from reelsearch.cache.counters import CacheCounters
from reelsearch.cache.entry import CachedResponse

if TYPE_CHECKING:
    import redis.asyncio as aioredis

# redis-py (~7 MiB of modules per process) is imported when a client is opened, not
# with this module: a worker without REELSEARCH_REDIS_URL never holds it.
log = logging.getLogger("reelsearch.cache")
T = TypeVar("T")


def open_redis(url: str, *, timeout: float, pool_size: int) -> aioredis.Redis:
    """A pooled client (hiredis parser when installed) that never retries on its own.

    redis-py retries failed commands by default, with backoff: that would turn
    one short timeout into several. The caller decides instead.
    """
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=pool_size,
        timeout=timeout,  # waiting for a free pooled connection
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )
    return aioredis.Redis(connection_pool=pool)


class RedisGuard:
    """Runs Redis calls with the down-for-a-while rule shared by every Redis user."""

    def __init__(self, client: aioredis.Redis, retry_seconds: float, counters: CacheCounters):
        self.client = client
        self.retry_seconds = retry_seconds
        self.counters = counters
        self._down_until = 0.0
        from redis.exceptions import RedisError

        # Errors that mean "Redis is not answering well now" (the socket layer's too).
        self._failures = (RedisError, OSError, TimeoutError)

    @property
    def is_up(self) -> bool:
        return time.monotonic() >= self._down_until

    async def call(self, what: str, run: Callable[[], Awaitable[T]], default: T) -> T:
        """``await run()``, or ``default`` if Redis is marked down or fails now."""
        if not self.is_up:
            return default
        try:
            return await run()
        except self._failures as exc:
            self.counters.level_errors["redis"] += 1
            self._down_until = time.monotonic() + self.retry_seconds
            log.warning(
                "redis %s failed (%s: %s); skipping it for %.1f s",
                what,
                type(exc).__name__,
                exc,
                self.retry_seconds,
            )
            return default


class RedisLevel:
    """Entries as ``<ns>:e:<key>`` strings with a TTL."""

    name = "redis"

    def __init__(self, guard: RedisGuard, ttl: float, namespace: str) -> None:
        self.guard = guard
        self.ttl = ttl
        self.namespace = namespace
        self._client = guard.client

    def _entry_key(self, key: str) -> str:
        return f"{self.namespace}:e:{key}"

    def _tag_key(self, tag: str) -> str:
        return f"{self.namespace}:t:{tag}"

    @property
    def _words_key(self) -> str:
        """A set of every word tag (``w:``, ``p:``, ``x:``, ``y:``) stored: what a write's
        matcher is asked."""
        return f"{self.namespace}:tw"

    async def word_tags(self) -> set[str]:
        """The word tags some stored entry carries (or carried: tag sets expire later)."""
        found: Any = await self.guard.call(
            "word_tags", lambda: self._client.smembers(self._words_key), set()
        )
        return {t.decode() if isinstance(t, bytes) else str(t) for t in found}

    async def get(self, key: str) -> CachedResponse | None:
        blob: Any = await self.guard.call(
            "get", lambda: self._client.get(self._entry_key(key)), None
        )
        if blob is None:
            return None
        try:
            entry = CachedResponse.from_bytes(blob)
        except ValueError as exc:
            log.warning("dropping a damaged redis entry %s: %s", key, exc)
            await self.delete(key)
            return None
        return entry if time.time() < entry.stale_until else None

    async def set(self, key: str, entry: CachedResponse) -> None:
        keep_ms = int(storage_seconds(entry, self.ttl, time.time()) * 1000)
        if keep_ms <= 0:
            return
        entry_key = self._entry_key(key)

        async def write() -> None:
            pipe = self._client.pipeline(transaction=False)
            pipe.set(entry_key, entry.to_bytes(), px=keep_ms)
            for tag in entry.tags:
                tag_key = self._tag_key(tag)
                pipe.sadd(tag_key, entry_key)
                # A tag set outlives each entry added to it: entries live at most ttl.
                pipe.pexpire(tag_key, int(self.ttl * 1000))
            words = [tag for tag in entry.tags if tag[:2] in ("w:", "p:", "x:", "y:")]
            if words:
                pipe.sadd(self._words_key, *words)
                pipe.pexpire(self._words_key, int(self.ttl * 1000))
            await pipe.execute()

        await self.guard.call("set", write, None)

    async def delete(self, key: str) -> bool:
        removed: Any = await self.guard.call(
            "delete", lambda: self._client.unlink(self._entry_key(key)), 0
        )
        return bool(removed)

    async def delete_tag(self, tag: str) -> int:
        tag_key = self._tag_key(tag)

        async def drop() -> int:
            keys = list(await self._client.smembers(tag_key))
            if not keys:
                return 0
            removed = int(await self._client.unlink(*keys))
            await self._client.unlink(tag_key)
            return removed

        return await self.guard.call("delete_tag", drop, 0)

    async def delete_tags(self, tags: Iterable[str]) -> int:
        """``delete_tag`` of many tags in two round trips (a write reaches dozens)."""
        tag_keys = [self._tag_key(tag) for tag in tags]
        if not tag_keys:
            return 0

        async def drop() -> int:
            pipe = self._client.pipeline(transaction=False)
            for tag_key in tag_keys:
                pipe.smembers(tag_key)
            members = await pipe.execute()
            keys = set().union(*members)
            removed = int(await self._client.unlink(*keys)) if keys else 0
            await self._client.unlink(*tag_keys)
            return removed

        return await self.guard.call("delete_tags", drop, 0)

    async def clear(self) -> None:
        async def drop_all() -> None:
            batch: list[Any] = []
            async for name in self._client.scan_iter(match=f"{self.namespace}:[et]:*", count=500):
                batch.append(name)
                if len(batch) >= 500:
                    await self._client.unlink(*batch)
                    batch.clear()
            if batch:
                await self._client.unlink(*batch)
            await self._client.unlink(self._words_key)

        await self.guard.call("clear", drop_all, None)

    async def stats(self) -> LevelStats:
        async def measure() -> tuple[int, int]:
            count = 0
            async for _ in self._client.scan_iter(match=f"{self.namespace}:e:*", count=1000):
                count += 1
            memory = await self._client.info("memory")
            return count, int(memory.get("used_memory", 0))

        entries, used = await self.guard.call("stats", measure, (0, 0))
        maxmemory = await self.guard.call("stats", self._maxmemory, 0)
        return LevelStats(
            name=self.name,
            entries=entries,
            bytes=used,
            limit_bytes=maxmemory,
            evictions=0,
            errors=self.guard.counters.level_errors[self.name],
        )

    async def size(self) -> tuple[int, int] | None:
        """Entries of this namespace and the bytes of their stored answers, for the metrics
        sampler (every few ticks, never per request): one SCAN of the namespace, and the
        values' lengths read in one pipelined STRLEN per batch; None while Redis is down.
        Bytes are the answers' own, without Redis's per-key overhead."""

        async def measure() -> tuple[int, int]:
            entries = size = 0
            batch: list[Any] = []

            async def add_lengths() -> int:
                pipe = self._client.pipeline(transaction=False)
                for name in batch:
                    pipe.strlen(name)
                lengths = await pipe.execute()
                batch.clear()
                return sum(int(n) for n in lengths)

            async for name in self._client.scan_iter(match=f"{self.namespace}:e:*", count=1000):
                entries += 1
                batch.append(name)
                if len(batch) >= 1000:
                    size += await add_lengths()
            if batch:
                size += await add_lengths()
            return entries, size

        found: tuple[int, int] | None = await self.guard.call("size", measure, None)
        return found

    async def _maxmemory(self) -> int:
        from redis.exceptions import RedisError

        try:
            found = await self._client.config_get("maxmemory")
        except RedisError:  # CONFIG may be disabled on a managed Redis
            return 0
        return int(found.get("maxmemory") or 0)

    async def close(self) -> None:
        """The client is shared: the cache closes it once for every user."""
