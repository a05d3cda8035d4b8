"""The search log (what is asked, aggregated in memory) and the warmer that recomputes it.

Each cacheable request adds one to a count in a dict: never a write per
request. Every ``flush_seconds`` the counts are added to a shared store
(a Redis sorted set, or a file in the disk cache's folder) in one batch, so
popularity survives restarts and is shared by workers. After start and after
each import the top N are recomputed in the background, sleeping between
searches so warming uses at most ``cpu_share`` of a core.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import orjson

from reelsearch.cache.redis import RedisGuard

log = logging.getLogger("reelsearch.cache")
# The in-memory log keeps at most this many distinct searches between flushes;
# past it, the rarest half is dropped (they would not make any top N).
MAX_LOGGED = 50_000
# The shared store keeps this many (the most asked).
MAX_SHARED = 20_000


class SearchLog:
    """Counts of raw query strings (one spelling per search), flushed in batches."""

    def __init__(
        self,
        redis: RedisGuard | None,
        namespace: str,
        path: Path | None,
        max_shared: int = MAX_SHARED,
    ) -> None:
        self.redis = redis
        self.key = f"{namespace}:searchlog"
        self.path = path
        self.max_shared = max_shared
        self._counts: Counter[bytes] = Counter()

    def record(self, query_string: bytes) -> None:
        counts = self._counts
        # get + 1, not ``+= 1``: a new search (every miss) would call Counter's
        # ``__missing__``, a Python frame.
        counts[query_string] = counts.get(query_string, 0) + 1
        if len(counts) > MAX_LOGGED:
            self._counts = Counter(dict(counts.most_common(MAX_LOGGED // 2)))

    async def flush(self) -> None:
        """Add the counts since the last flush to the shared store."""
        batch, self._counts = self._counts, Counter()
        if not batch:
            return
        if self.redis is not None and self.redis.is_up:
            client = self.redis.client

            async def add() -> bool:
                pipe = client.pipeline(transaction=False)
                for query_string, count in batch.items():
                    pipe.zincrby(self.key, count, query_string)
                pipe.zremrangebyrank(self.key, 0, -self.max_shared - 1)
                await pipe.execute()
                return True

            if await self.redis.call("searchlog", add, False):
                return
        if self.path is not None:
            shared = self._read_file()
            if len(shared) >= self.max_shared:
                # A full file keeps its own entries on ties (they come first), so a new
                # search asked no more often than the least asked one kept cannot enter:
                # on a stream of never-asked searches nothing changes, and nothing is
                # sorted or written (~27 ms every flush at 20,000 searches otherwise).
                floor = min(shared.values())
                batch = Counter({k: n for k, n in batch.items() if k in shared or n > floor})
                if not batch:
                    return
            merged = Counter(shared) + batch
            try:
                self.path.write_bytes(
                    orjson.dumps({k.decode(): v for k, v in merged.most_common(self.max_shared)})
                )
            except OSError as exc:
                log.warning("search log not written to %s: %s", self.path, exc)

    def _read_file(self) -> dict[bytes, int]:
        if self.path is None:
            return {}
        try:
            return {k.encode(): int(v) for k, v in orjson.loads(self.path.read_bytes()).items()}
        except (OSError, orjson.JSONDecodeError, AttributeError, ValueError):
            return {}

    async def top(self, n: int) -> list[bytes]:
        """The ``n`` most asked query strings: shared counts plus those not yet flushed."""
        counts: Counter[bytes] = Counter(self._counts)
        if self.redis is not None and self.redis.is_up:
            client = self.redis.client

            async def read() -> list[Any]:
                return list(await client.zrevrange(self.key, 0, n - 1, withscores=True))

            shared: list[Any] = await self.redis.call("searchlog", read, [])
            for query_string, score in shared:
                counts[bytes(query_string)] += int(score)
        counts.update(self._read_file())
        return [query_string for query_string, _ in counts.most_common(n)]


async def warm(
    query_strings: list[bytes], compute: Callable[[bytes], Awaitable[bool]], cpu_share: float
) -> int:
    """Compute each query (``compute`` returns whether it ran a search); how many ran.

    After each search, sleep so that searching is ``cpu_share`` of the time.
    """
    ran = 0
    for query_string in query_strings:
        started = time.perf_counter()
        try:
            did_search = await compute(query_string)
        except Exception as exc:  # a logged query may no longer be valid (a genre gone)
            log.debug("warming skipped %r: %s", query_string, exc)
            continue
        if did_search:
            ran += 1
            spent = time.perf_counter() - started
            await anyio.sleep(spent * (1 - cpu_share) / cpu_share)
    return ran
