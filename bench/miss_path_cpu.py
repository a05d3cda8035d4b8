"""What the result cache adds to a miss, without the search: the engine answers from a memo.

Each never-asked search is first searched by the real engine (outside the apps) and
its ``SearchResult`` kept; both apps' engines are then replaced by a lookup in that
memo, so a request through the app with the cache on (memory + disk) and one through
the app with it off differ only by what the cache does: key, lookups, entry, store,
single-flight, search log, and how the answer is sent. Without the ~700 µs search
the difference is not buried in it, so a few thousand misses give a stable figure.

Per round, a fresh slice of never-asked searches goes through both apps in chunks,
alternating which goes first; CPU time (``time.process_time``) per request per app,
and the median over rounds of on - off.

The garbage collector's passes are global: one triggered by either app lands in
whichever app's chunk allocates at that moment, a ~20-90 ms lump that moves a round's
difference by tens of µs. ``--no-gc`` turns automatic collection off for the timed
rounds (a full collection between rounds, untimed): what is left is the Python of
each path. The collector's own share per miss is bench/cache_overhead.py ``--one``'s.

    python bench/miss_path_cpu.py --db ./reelsearch.db [--rounds 5 --per-round 2000] [--no-gc]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import random
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from catalog import load_movies
from engines import Reelsearch
from queries import generate
from reelsearch.cache.keys import canonical_query, query_material
from reelsearch.config import Settings
from reelsearch.http import search_cache
from reelsearch.http.app import create_app
from reelsearch.http.params import query_pairs
from reelsearch.search.query import parse_search

ONLY_ROUNDS = 3  # the most rounds a --only run takes
CHUNK = 100  # requests per app before switching: the caches of each app stay about as warm


def _scope(target: str) -> dict[str, Any]:
    path, _, query = target.partition("?")
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": query.encode(), "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80), "headers": [(b"host", b"bench"), (b"user-agent", b"wrk")],
    }  # fmt: skip


async def _handshake(folder: Path | None, say: str, wait_for: str) -> None:
    """With ``--handshake``: tell a driver (bench/miss_path_instructions.sh) we reached a
    point, and wait until it answers (it turns callgrind's instrumentation on or off)."""
    if folder is None:
        return
    (folder / say).touch()
    while not (folder / wait_for).exists():
        await asyncio.sleep(0.05)


async def run(
    db: Path, rounds: int, per_round: int, only: str | None = None, no_gc: bool = False,
    handshake: Path | None = None,
) -> None:  # fmt: skip
    # --only runs that differ in --rounds alone (up to 3) search and memo the same queries.
    total = (max(rounds, ONLY_ROUNDS) if only else rounds) * per_round + per_round
    movies = load_movies(db)
    queries = generate(movies, per_kind=total * 2 // 5 + 1, seed=17, min_votes=0)
    random.Random(17).shuffle(queries)
    rs = Reelsearch("")
    paths = list(dict.fromkeys(rs.search_path(q.q, q.filters) for q in queries))
    paths = paths[:total]
    assert len(paths) == total, len(paths)
    disk = Path(tempfile.mkdtemp(prefix="miss-path-"))
    base = Settings(
        database_url=f"sqlite:///{db.resolve()}", cache_warm_top=0, access_log=False,
        metrics_enabled=False, search_deadline_ms=10_000,
    )  # fmt: skip
    if handshake is not None:
        # Counted in instructions (bench/miss_path_instructions.sh) the requests run many
        # times slower than natively, so the cache's timed housekeeping would land in
        # them many times more often than in a server: the search log's flush (every
        # 10 s, 5-27 ms; decision 0019) is left out.
        search_cache.SEARCH_LOG_FLUSH_SECONDS = 1e9
    on = create_app(replace(base, cache="memory,disk", cache_disk_path=str(disk)))
    off = create_app(replace(base, cache="off"))
    apps = {"on": on, "off": off}
    if only is not None:  # one app, to run under a profiler
        apps = {only: apps[only]}
        on = off = apps[only]
    sent: list[int] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            sent.append(message["status"])

    async with contextlib.AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        engine = on.state.engine
        memo: dict[bytes, Any] = {}
        for target in paths:  # the real searches, once, outside both apps
            query = parse_search(query_pairs(target.partition("?")[2].encode()))
            material = query_material(canonical_query(query))
            memo[material] = await engine.search(canonical_query(query), engine.deadline())

        async def from_memo(query: Any, deadline: Any = None) -> Any:
            return memo[query_material(canonical_query(query))]

        for app in apps.values():
            app.state.engine.search = from_memo
        # The memo is the bench's, not the server's: out of the collector's view, as the
        # start-up heap is in a server (cache/heap.py), or full collections walk it.
        gc.collect()
        gc.freeze()
        fresh = iter(paths)
        for _ in range(per_round):  # warm both apps' code paths on searches not measured
            target = next(fresh)
            for app in apps.values():
                await app(_scope(target), receive, send)
        if only is not None:
            scopes = [_scope(next(fresh)) for _ in range(rounds * per_round)]
            await _handshake(handshake, "ready", "go")
            for scope in scopes:
                await on(scope, receive, send)
            await _handshake(handshake, "done", "end")
            assert set(sent) == {200}, set(sent)
            return
        print("| round | cache off µs/miss | cache on µs/miss | on - off |")
        print("| --- | ---: | ---: | ---: |")
        diffs = []
        for round_ in range(rounds):
            batch = [next(fresh) for _ in range(per_round)]
            if no_gc:
                gc.collect()
                gc.disable()
            spent = {"on": 0.0, "off": 0.0}
            for start in range(0, per_round, CHUNK):
                chunk = batch[start : start + CHUNK]
                first_on = start // CHUNK % 2
                order = (("on", on), ("off", off)) if first_on else (("off", off), ("on", on))
                for name, app in order:
                    scopes = [_scope(t) for t in chunk]
                    began = time.process_time()
                    for scope in scopes:
                        await app(scope, receive, send)
                    spent[name] += time.process_time() - began
            gc.enable()
            a, b = (spent[k] / per_round * 1e6 for k in ("off", "on"))
            diffs.append(b - a)
            print(f"| {round_ + 1} | {a:.1f} | {b:.1f} | {b - a:+.1f} |")
        assert set(sent) == {200}, set(sent)
        counters = on.state.cache_counters
        print(f"\nmedian on - off: {statistics.median(diffs):+.1f} µs per miss; cache-on app: "
              f"{counters.misses:,} misses, {counters.computed:,} computed")  # fmt: skip
    shutil.rmtree(disk, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--per-round", type=int, default=2000)
    p.add_argument("--only", choices=["on", "off"],
                   help="one app: warm on --per-round searches, then --rounds x --per-round "
                   "misses, no timing (to run under a profiler)")  # fmt: skip
    p.add_argument("--no-gc", action="store_true",
                   help="no automatic garbage collection during the timed rounds")  # fmt: skip
    p.add_argument("--handshake", type=Path,
                   help="with --only: a folder to signal in around the timed requests")  # fmt: skip
    args = p.parse_args()
    asyncio.run(run(args.db, args.rounds, args.per_round, args.only, args.no_gc, args.handshake))


if __name__ == "__main__":
    main()
