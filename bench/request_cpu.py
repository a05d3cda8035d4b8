"""CPU per request of the HTTP layer, in process: /health, an L1 hit, a cold search.

Why: between the socket and the search engine every request crosses the same
machinery (middleware, request id, metrics, access line, deadline, disconnect
watch, cache lookups). Over HTTP on a shared 2-core machine wall-clock figures swing
by tens of percent; the CPU time of this process per request barely moves. The ASGI
server's own cost is the same for every case and is not counted here.

- ``/health``: the trivial endpoint through the whole stack.
- ``hit``: a repeated search answered from L1 (the fast path).
- ``cold``: distinct known-item searches (bench/queries.py) on an app with the
  cache off; ``engine`` is the same searches called on the engine directly, so
  ``cold - engine`` is what the HTTP layer adds to a miss.
- ``cold never asked``: searches never asked before (a fresh slice each round and
  app), on the cache-off app and on one with the embedded default levels (memory and
  disk): the difference is what the cache adds to a miss.

Each case runs under the default observability (metrics, JSON access line to a file)
and without both (``bare``). Rounds rotate the apps; medians are printed.
``--interleaved`` instead sends each cold search to the engine and then through the
cache-off app, query by query, and prints both per round: the HTTP layer's share of a
computed search with the least noise.

    python bench/request_cpu.py --db ./reelsearch.db [--rounds 7] [--profile CASE]
    python bench/request_cpu.py --db ./reelsearch.db --interleaved [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import pstats
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from catalog import load_movies
from engines import Reelsearch
from queries import generate
from reelsearch.config import Settings
from reelsearch.http.app import create_app
from reelsearch.http.params import query_pairs
from reelsearch.search.query import parse_search


def scope_of(target: str, headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    path, _, query = target.partition("?")
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": query.encode(), "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80), "state": {},
        "headers": headers if headers is not None else [(b"host", b"bench"),
                                                          (b"accept-encoding", b"gzip")],
    }  # fmt: skip


async def _receive() -> dict[str, Any]:
    await asyncio.Event().wait()  # a GET has no body; the client never goes away
    raise AssertionError("unreachable")


async def run_app(app: Any, targets: list[str]) -> float:
    """CPU microseconds per request for ``targets`` through ``app``."""
    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])
        elif statuses and statuses[-1] >= 500 and message.get("body"):
            print(message["body"][:300], file=sys.__stdout__)

    started = time.process_time()
    for target in targets:
        await app(scope_of(target), _receive, send)
    took = time.process_time() - started
    assert all(s < 500 for s in statuses), set(statuses)
    return took / len(targets) * 1e6


async def run_engine(app: Any, targets: list[str]) -> float:
    """CPU microseconds per search called on the engine directly (parse included)."""
    engine, settings = app.state.engine, app.state.settings
    started = time.process_time()
    for target in targets:
        query = parse_search(
            query_pairs(target.partition("?")[2].encode()),
            max_query_chars=settings.max_query_chars,
            max_query_words=settings.max_query_words,
        )
        await engine.search(query, engine.deadline())
    return (time.process_time() - started) / len(targets) * 1e6


async def interleaved(app: Any, targets: list[str], rounds: int) -> None:
    """Per round: CPU per search on the engine alone and through the whole app."""
    engine, settings = app.state.engine, app.state.settings

    async def send(message: dict[str, Any]) -> None:
        pass

    for target in targets:  # warm: snapshot pages, plans
        await app(scope_of(target, []), _receive, send)
    print("| round | engine us/search | app us/search | app - engine |")
    print("| --- | ---: | ---: | ---: |")
    for round_ in range(rounds):
        on_engine = through_app = 0.0
        for target in targets:
            started = time.process_time()
            query = parse_search(
                query_pairs(target.partition("?")[2].encode()),
                max_query_chars=settings.max_query_chars,
                max_query_words=settings.max_query_words,
            )
            await engine.search(query, engine.deadline())
            middle = time.process_time()
            await app(scope_of(target, []), _receive, send)  # no Accept-Encoding, as wrk
            on_engine += middle - started
            through_app += time.process_time() - middle
        e, a = (x / len(targets) * 1e6 for x in (on_engine, through_app))
        print(f"| {round_ + 1} | {e:.1f} | {a:.1f} | {a - e:.1f} |")


async def measure(args: argparse.Namespace) -> None:
    movies = load_movies(args.db)
    misses = 5 * (args.rounds + 1) * args.cold  # four cases per round, and some kinds run short
    queries = generate(movies, per_kind=(args.cold + misses) // 5 + 1, seed=7, min_votes=0)
    random.Random(7).shuffle(queries)
    rs = Reelsearch("")
    every = list(dict.fromkeys(rs.search_path(q.q, q.filters) for q in queries))
    cold = every[: args.cold]
    # Never asked: a fresh slice per round and app for the cached apps' misses.
    fresh = iter(every[args.cold :])
    hit = [cold[0]] * args.n
    health = ["/health"] * args.n
    log = open(args.log, "w")  # noqa: SIM115 - open for the whole run
    sys.stderr = log  # configure_logging writes the access lines to sys.stderr
    base = Settings(
        database_url=f"sqlite:///{args.db.resolve()}",
        log_format="json",
        cache_warm_top=0,
        search_deadline_ms=10_000,  # CPU is measured here; a loaded machine must not 503
    )
    if args.interleaved:
        app = create_app(replace(base, cache="off", access_log=False, metrics_enabled=False))
        async with app.router.lifespan_context(app):
            await interleaved(app, cold, args.rounds)
        sys.stderr = sys.__stderr__
        return
    observed = {"observed": {}, "bare": {"access_log": False, "metrics_enabled": False}}
    disk = Path(args.log).with_suffix(".l3")
    apps: dict[tuple[str, str], Any] = {}
    for name, extra in observed.items():
        apps[(name, "cached")] = create_app(
            replace(base, cache="memory,disk", cache_disk_path=str(disk / name), **extra)
        )
        apps[(name, "off")] = create_app(replace(base, cache="off", **extra))
    figures: dict[str, list[float]] = {}
    async with contextlib.AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        for app in apps.values():  # warm: snapshot pages, the hit's entry and alias
            await run_app(app, cold[:50] + hit[:3] + health[:3])
        cases: list[tuple[str, Any, list[str] | None]] = [
            (f"{name} {case}", apps[(name, kind)], targets)
            for name in observed
            for case, kind, targets in (
                ("/health", "cached", health),
                ("hit", "cached", hit),
                ("cold", "off", cold),
                ("cold never asked, cache off", "off", None),
                ("cold never asked, cache on", "cached", None),
            )
        ]
        for round_ in range(args.rounds):
            shift = round_ % len(cases)
            for label, app, targets in cases[shift:] + cases[:shift]:
                if targets is None:  # misses: never asked before
                    targets = [next(fresh) for _ in range(args.cold)]
                figures.setdefault(label, []).append(await run_app(app, targets))
            figures.setdefault("engine only (cold)", []).append(
                await run_engine(apps[("bare", "off")], cold)
            )
        if args.profile:
            label, app, targets = next(c for c in cases if c[0] == args.profile)
            if targets is None:
                targets = [next(fresh) for _ in range(args.cold)]
            profiler = cProfile.Profile()
            profiler.enable()
            await run_app(app, targets)
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(args.sort).print_stats(args.top)
            print(out.getvalue(), file=sys.__stdout__)
    sys.stderr = sys.__stderr__
    print(f"| case | CPU us/request (median of {args.rounds}) | range |")
    print("| --- | ---: | ---: |")
    for label, values in figures.items():
        print(f"| {label} | {statistics.median(values):.1f} | "
              f"{min(values):.1f}-{max(values):.1f} |")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("-n", type=int, default=20_000, help="requests per /health or hit round")
    p.add_argument("--cold", type=int, default=2_000, help="distinct cold searches per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--log", default="/tmp/request_cpu.log", help="where access lines go")
    p.add_argument("--interleaved", action="store_true", help="engine vs app, query by query")
    p.add_argument("--sort", default="tottime")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--profile", help='a case label to profile, e.g. "observed hit"')
    asyncio.run(measure(p.parse_args()))


if __name__ == "__main__":
    main()
