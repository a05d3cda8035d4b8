"""Per-client token buckets: in this process, or shared by every process through Redis.

The bucket is kept as GCRA (the generic cell rate algorithm): one number per
client, its "theoretical arrival time" (TAT). A bucket of ``burst`` tokens that
refills at ``rate`` tokens a second is full when TAT <= now; a request costing
``n`` moves TAT forward by n / rate and is refused if that would put TAT more
than burst / rate seconds ahead of now. One timestamp instead of (tokens, time),
so the Redis version is one short Lua script, atomic, on the server's clock.

Why not the ``limits`` library: its strategies are fixed, sliding and moving
windows, which allow a whole window's quota at once and have no steady refill
with a separate burst (docs/decisions/0010).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, NamedTuple, Protocol

from reelsearch.errors import ConfigError

logger = logging.getLogger("reelsearch.http.limiter")


class Decision(NamedTuple):
    """The answer for one request: allowed or not, and what the headers say.

    A NamedTuple: built on every request, and a frozen dataclass costs 1-2 us more.
    """

    allowed: bool
    limit: int  # the burst: most tokens a client can hold
    remaining: int  # tokens left after this request (0 when refused)
    reset_after: float  # seconds until the bucket is full again
    retry_after: float  # seconds until this request would be allowed (0 if it was)


class Limiter(Protocol):
    burst: int

    async def take(self, client: str, cost: int) -> Decision: ...

    async def close(self) -> None: ...


def gcra(tat: float, now: float, cost: int, rate: float, burst: int) -> tuple[float, Decision]:
    """The new TAT and the decision for ``cost`` tokens at ``now`` (seconds)."""
    interval = 1.0 / rate
    tat = max(tat, now)
    new_tat = tat + cost * interval
    allow_at = new_tat - burst * interval
    if now < allow_at:
        remaining = max(0, int((now - (tat - burst * interval)) / interval + 1e-9))
        return tat, Decision(False, burst, remaining, tat - now, allow_at - now)
    remaining = int((now - allow_at) / interval + 1e-9)
    return new_tat, Decision(True, burst, remaining, new_tat - now, 0.0)


class MemoryLimiter:
    """Buckets in this process only: each worker process limits on its own."""

    # Past this many clients, forget the full buckets (TAT in the past): a full
    # bucket and a forgotten one behave the same.
    MAX_CLIENTS = 100_000

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._tats: dict[str, float] = {}

    async def take(self, client: str, cost: int) -> Decision:
        now = time.monotonic()
        tat, decision = gcra(self._tats.get(client, now), now, cost, self.rate, self.burst)
        self._tats[client] = tat
        if len(self._tats) > self.MAX_CLIENTS:
            self._tats = {key: t for key, t in self._tats.items() if t > now}
        return decision

    async def close(self) -> None:
        self._tats.clear()


# KEYS[1]: the client's key. ARGV: cost, rate (tokens/s), burst.
# Returns {allowed, remaining, reset_after_us, retry_after_us}. TAT is stored in
# microseconds of the Redis server's clock, so every host agrees on "now".
_GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[1])
local interval = 1000000 / tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + cost * interval
local allow_at = new_tat - burst * interval
if now < allow_at then
  local remaining = math.floor((now - (tat - burst * interval)) / interval)
  return {0, math.max(remaining, 0), math.ceil(tat - now), math.ceil(allow_at - now)}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, math.floor((now - allow_at) / interval), math.ceil(new_tat - now), 0}
"""


class RedisLimiter:
    """Buckets in Redis, shared by every process and host that uses the same server.

    If Redis can't be reached the request is allowed (fail open) and a warning
    is logged at most every 10 s: a limiter outage must not become an API outage.
    After a failure Redis is not asked again for ``PAUSE_AFTER_FAILURE`` seconds:
    a Redis that hangs (rather than refuses) made every request wait for the
    0.5 s socket timeout (bench/faults.py redis-pause: p99 0.54 s, throughput
    down to 16 req/s while it hung).
    """

    KEY_PREFIX = "reelsearch:ratelimit:"
    # Short enough that limits hold again within a second of Redis's return.
    PAUSE_AFTER_FAILURE = 1.0

    def __init__(self, url: str, rate: float, burst: int) -> None:
        try:
            import redis.asyncio as redis
        except ImportError:
            raise ConfigError(
                "REELSEARCH_REDIS_URL is set but the redis client is not installed: "
                "pip install 'reelsearch[redis]'"
            ) from None

        self.rate = rate
        self.burst = burst
        self._redis: Any = redis.Redis.from_url(url, socket_timeout=0.5,
                                                socket_connect_timeout=0.5)  # fmt: skip
        self._script = self._redis.register_script(_GCRA_LUA)
        self._warned_at = -math.inf
        self._failed_at = -math.inf

    async def take(self, client: str, cost: int) -> Decision:
        from redis.exceptions import RedisError

        if time.monotonic() - self._failed_at < self.PAUSE_AFTER_FAILURE:
            return Decision(True, self.burst, self.burst, 0.0, 0.0)
        try:
            allowed, remaining, reset_us, retry_us = await self._script(
                keys=[self.KEY_PREFIX + client], args=[cost, self.rate, self.burst]
            )
        except RedisError as exc:
            now = self._failed_at = time.monotonic()
            if now - self._warned_at > 10:
                self._warned_at = now
                logger.warning("rate limiter: Redis unavailable, allowing requests: %s", exc)
            return Decision(True, self.burst, self.burst, 0.0, 0.0)
        return Decision(bool(allowed), self.burst, int(remaining), reset_us / 1e6, retry_us / 1e6)

    async def close(self) -> None:
        await self._redis.aclose()
