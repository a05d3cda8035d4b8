"""What the rate limiter costs per request: the middleware around a constant ASGI app.

Three variants side by side, in rounds, shuffled: no limiter, the in-process
bucket, the Redis bucket (one EVALSHA round trip on loopback). Each request is
a fresh client address half of the time and a repeat the other half, with a
rate high enough that nothing is refused. Prints the median microseconds per
request of each and the difference to no limiter.

    python bench/ratelimit_cost.py --redis redis://127.0.0.1:6379/6 --requests 5000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from typing import Any

from reelsearch.http.limiter import MemoryLimiter, RedisLimiter
from reelsearch.http.middleware.ratelimit import RateLimitMiddleware


async def _constant_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _noop_receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b""}


async def _noop_send(message: Any) -> None:
    return None


async def _time(app: Any, requests: int) -> float:
    """Microseconds per request through ``app``."""
    scopes = [
        {"type": "http", "path": "/v1/search", "query_string": b"q=alien", "headers": [],
         "client": (f"10.0.{n % 200}.{n % 2 and n % 250}", 1234)}  # fmt: skip
        for n in range(requests)
    ]
    started = time.perf_counter()
    for scope in scopes:
        await app(scope, _noop_receive, _noop_send)
    return (time.perf_counter() - started) / requests * 1e6


async def main(args: argparse.Namespace) -> None:
    rate, burst = 1e9, 1_000_000  # nothing is refused: the cost of a granted request
    variants: dict[str, Any] = {
        "none": _constant_app,
        "memory": RateLimitMiddleware(_constant_app, limiter=MemoryLimiter(rate, burst)),
    }
    redis_limiter = None
    if args.redis:
        redis_limiter = RedisLimiter(args.redis, rate, burst)
        variants["redis"] = RateLimitMiddleware(_constant_app, limiter=redis_limiter)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name in random.sample(list(variants), len(variants)):
            times[name].append(await _time(variants[name], args.requests))
    base = statistics.median(times["none"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:>6}: {median:8.2f} us/request  (+{median - base:.2f} us over none; "
              f"rounds {', '.join(f'{v:.2f}' for v in values)})")  # fmt: skip
    if redis_limiter is not None:
        await redis_limiter.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="", help="redis://HOST:PORT/DB (loopback)")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
