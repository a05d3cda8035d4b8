"""What held answers cost the garbage collector, in process: tracked objects per miss and
the CPU of full collections, with L1 holding many answers (decision 0029).

One app (the whole ASGI stack, a real engine, no HTTP server): ``--warm`` never-asked
searches first (the engine's bounded caches, 4,096 plans and parsed queries, fill up;
L1 is then emptied), then ``--prefill`` more that stay in L1, then ``--misses``
never-asked searches measured: generation-2 collections during them and their CPU
(``gc.callbacks``, ``time.thread_time``), CPU per miss, tracked objects kept per miss
(``gc.get_objects``), and a full collection's CPU before and after (best of 5).
Searches are one to three words of random titles. Run it with ``PYTHONPATH=<other
checkout>/src`` for another version of the code; ``--cache off`` for the floor;
``--freeze`` freezes the heap after each full collection (the option not taken).

    python bench/l1_gc_inprocess.py --db ./reelsearch.db [--misses 8000 --prefill 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import random
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from reelsearch.config import Settings
from reelsearch.http.app import create_app


def never_asked(db: Path, n: int, seed: int) -> list[str]:
    titles = [row[0] for row in sqlite3.connect(db).execute("SELECT title FROM movies")]
    rng = random.Random(seed)
    found: dict[str, None] = {}
    while len(found) < n:
        words = rng.choice(titles).split()
        start = rng.randrange(len(words))
        found["+".join(words[start : start + rng.choice((1, 2, 3))])] = None
    return list(found)


def scope(q: str) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/v1/search", "raw_path": b"/v1/search", "root_path": "",
        "query_string": ("q=" + q).encode(), "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80), "headers": [(b"host", b"bench")],
    }  # fmt: skip


def full_collection_ms() -> float:
    best = 1e9
    for _ in range(5):
        started = time.thread_time()
        gc.collect()
        best = min(best, time.thread_time() - started)
    return best * 1000


async def run(args: argparse.Namespace) -> None:
    settings = Settings(
        database_url=f"sqlite:///{args.db.resolve()}", cache_warm_top=0, access_log=False,
        metrics_enabled=False, cache=args.cache, cache_disk_path=tempfile.mkdtemp(),
        cache_ttl=3600,
    )  # fmt: skip
    app = create_app(settings)
    statuses: collections.Counter[int] = collections.Counter()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses[message["status"]] += 1

    queries = never_asked(args.db, args.warm + args.prefill + args.misses, args.seed)
    warm = queries[: args.warm]
    prefill = queries[args.warm : args.warm + args.prefill]
    measured = queries[args.warm + args.prefill :]
    pauses: dict[int, list[float]] = collections.defaultdict(list)
    began = [0.0]
    full_done = [False]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.thread_time()
        else:
            pauses[info["generation"]].append(time.thread_time() - began[0])
            full_done[0] = full_done[0] or info["generation"] == 2

    async with app.router.lifespan_context(app):
        for q in warm:
            await app(scope(q), receive, send)
        cache = app.state.result_cache
        if cache is not None and cache.memory is not None:
            cache.memory.drop_all()
            cache.aliases = {}
        for q in prefill:
            await app(scope(q), receive, send)
        await asyncio.sleep(1.0)  # the requests' timers fire
        gc.collect()
        tracked = len(gc.get_objects())
        print(f"tracked {tracked:,} with L1 prefilled ({args.prefill:,}); full collection "
              f"{full_collection_ms():.1f} ms CPU")  # fmt: skip
        gc.callbacks.append(on_gc)
        started = time.thread_time()
        for q in measured:
            await app(scope(q), receive, send)
            if args.freeze and full_done[0]:
                full_done[0] = False
                gc.freeze()
        cpu = time.thread_time() - started
        gc.callbacks.remove(on_gc)
        await asyncio.sleep(1.0)
        gc.collect()
        grown = len(gc.get_objects()) - tracked
        held = len(cache.memory) if cache is not None and cache.memory is not None else 0
        print(f"statuses {dict(statuses)}; L1 entries {held:,}; frozen {gc.get_freeze_count():,}")
        print(f"after {args.misses:,} misses: tracked {grown:+,} ({grown / args.misses:+.2f} per "
              f"miss); full collection {full_collection_ms():.1f} ms CPU")  # fmt: skip
        for generation, times in sorted(pauses.items()):
            print(f"  generation {generation}: {len(times)} collections, "
                  f"{sum(times) * 1000:.1f} ms CPU, max {max(times) * 1000:.2f} ms")  # fmt: skip
        full = sum(pauses.get(2, [])) / args.misses * 1e6
        print(f"  CPU per miss {cpu / args.misses * 1e6:.0f} µs, of which full collections "
              f"{full:.1f} µs")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("--cache", default="memory,disk", help='levels, or "off"')
    p.add_argument("--warm", type=int, default=4500)
    p.add_argument("--prefill", type=int, default=20_000)
    p.add_argument("--misses", type=int, default=8000)
    p.add_argument("--freeze", action="store_true")
    p.add_argument("--seed", type=int, default=5)
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
