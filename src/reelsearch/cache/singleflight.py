"""Single-flight: N concurrent misses on one key run one search.

Within a process, later callers await the first caller's future. Across
processes, the first to take a short Redis lock (``SET NX PX``) computes and
stores the answer in Redis before releasing it; the others poll Redis for
the answer until the lock is gone, then compute themselves only if it never
came (the holder died or Redis failed). Without Redis, each process
computes once.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable

from reelsearch.cache.counters import CacheCounters
from reelsearch.cache.entry import CachedResponse
from reelsearch.cache.redis import RedisGuard

Compute = Callable[[], Awaitable[CachedResponse]]
Fetch = Callable[[], Awaitable[CachedResponse | None]]
# Longer than any search should take (the lock is a hint, not a correctness need):
# a holder that dies releases it by expiry.
LOCK_SECONDS = 2.0
POLL_SECONDS = 0.005
# Delete the lock only if it is still ours (it may have expired and been retaken).
_FAILED = object()
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class SingleFlight:
    """At most one computation per key in this process, and (with Redis) in the deployment."""

    def __init__(
        self,
        counters: CacheCounters,
        redis: RedisGuard | None = None,
        namespace: str = "rs",
        lock_seconds: float = LOCK_SECONDS,
    ) -> None:
        self.counters = counters
        self.lock_seconds = lock_seconds
        self.redis = redis
        self.namespace = namespace
        # key -> the future its waiters await; None while nobody waits (most misses):
        # the future is made by the first waiter, not by every computation.
        self._inflight: dict[str, asyncio.Future[CachedResponse] | None] = {}

    async def run(self, key: str, compute: Compute, fetch_shared: Fetch | None) -> CachedResponse:
        running = self.claim(key)
        if running is not None:
            return await asyncio.shield(running)
        try:
            if self.redis is None or fetch_shared is None:
                entry = await compute()  # in this process only: one coroutine less per miss
            else:
                entry = await self._across_processes(key, compute, fetch_shared)
        except BaseException as exc:
            self.fail(key, exc)
            raise
        self.settle(key, entry)
        return entry

    def claim(self, key: str) -> asyncio.Future[CachedResponse] | None:
        """None: ``key`` is now the caller's to compute, and it must ``settle`` or ``fail``
        it; else the future of the computation already running, to await (shielded).

        Synchronous, so a caller computing in this process alone (``ResultCache``
        without Redis) runs the single-flight without a coroutine of its own.
        """
        if self.claim_if_free(key):
            return None
        inflight = self._inflight
        running = inflight[key]
        if running is None:
            running = inflight[key] = asyncio.get_running_loop().create_future()
        self.counters.singleflight_waits += 1
        return running

    def claim_if_free(self, key: str) -> bool:
        """Claim ``key`` (True: the caller must ``settle`` or ``fail`` it, as after ``claim``)
        unless a computation of it is running (False: nothing changed, nothing counted)."""
        inflight = self._inflight
        if key in inflight:
            return False
        inflight[key] = None
        return True

    def settle(self, key: str, entry: CachedResponse) -> None:
        """The caller that claimed ``key`` computed ``entry``: hand it to the waiters."""
        running = self._inflight.pop(key)
        if running is not None:
            running.set_result(entry)

    def settle_if_awaited(self, key: str, make: Callable[[], CachedResponse]) -> bool:
        """``settle`` with an entry made (by ``make``) only if a caller waits for it: a
        computation that is never to be stored (decision 0039) releases its claim for
        a dict pop when no other request asked for it meanwhile. True if one did."""
        running = self._inflight.pop(key)
        if running is None:
            return False
        try:
            running.set_result(make())
        except BaseException as exc:
            running.set_exception(exc)
            raise
        return True

    def fail(self, key: str, exc: BaseException) -> None:
        """The caller that claimed ``key`` failed with ``exc``: the waiters get it too."""
        running = self._inflight.pop(key)
        if running is not None:
            running.set_exception(exc)
            running.exception()  # retrieved: no "never retrieved" warning

    async def _across_processes(
        self, key: str, compute: Compute, fetch_shared: Fetch | None
    ) -> CachedResponse:
        guard = self.redis
        if guard is None or fetch_shared is None or not guard.is_up:
            return await compute()
        client = guard.client
        lock = f"{self.namespace}:lock:{key}"
        token = os.urandom(8).hex()
        taken: object = await guard.call(
            "lock",
            lambda: client.set(lock, token, nx=True, px=int(self.lock_seconds * 1000)),
            _FAILED,
        )
        if taken is _FAILED:  # Redis failed: compute without it
            return await compute()
        if not taken:  # another process holds it: wait for its answer
            self.counters.singleflight_remote_waits += 1
            found = await self._wait_for(lock, fetch_shared)
            if found is not None:
                return found
            return await compute()
        try:
            return await compute()
        finally:
            await guard.call("unlock", lambda: client.eval(_RELEASE, 1, lock, token), None)

    async def _wait_for(self, lock: str, fetch_shared: Fetch) -> CachedResponse | None:
        guard = self.redis
        assert guard is not None
        deadline = time.monotonic() + self.lock_seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(POLL_SECONDS)
            found = await fetch_shared()
            if found is not None:
                return found
            held = await guard.call("lock", lambda: guard.client.exists(lock), 0)
            if not held:  # released (or Redis failed) without an answer
                return await fetch_shared()
        return None
