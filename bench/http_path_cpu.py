"""CPU of a cold search's HTTP path in process: what a search costs besides the engine.

Why: over HTTP a cold search costs about 550 µs of server CPU, the engine about
300 µs of it. Timing the whole app against the engine alone query by query
(``request_cpu.py --interleaved``) hides part of the rest: the app's run of a
query finds the engine's caches (plans, typo candidates, compiled matches) warm
from the engine's run just before. Here the engine's ``search`` is replaced by
a lookup of results computed beforehand, so the app's CPU per search is the
HTTP path alone: routing, parsing, the deadline and disconnect watch, stage
metrics, rendering, ETag, headers, the metrics and the access line.

The app is built as the server builds it (``Settings.from_env``, so
``REELSEARCH_*`` variables apply) with the result cache off and the access
line going to a file. Per round it prints the stubbed search's and
``/health``'s CPU per request (medians over the rounds last), then the parts
timed alone in a tight loop (warm caches: a floor, not a share).

    python bench/http_path_cpu.py --db sample.db --paths bench-out/paths-reelsearch.txt
    PYTHONPATH=/path/to/other/src python bench/http_path_cpu.py ...   # another tree
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reelsearch.config import Settings
from reelsearch.http.app import create_app
from reelsearch.http.params import query_pairs
from reelsearch.http.search_cache import render_search
from reelsearch.search.query import SearchQuery, parse_search
from request_cpu import _receive, scope_of

HEADERS = [(b"host", b"127.0.0.1")]  # what wrk sends: no Accept-Encoding


def result_key(query: SearchQuery) -> tuple[Any, ...]:
    """What tells two searches apart, less the raw text (the route may blank it)."""
    return (query.words, query.last_is_prefix, query.quoted, query.excluded, query.year_from,
            query.year_to, tuple(sorted(g.lower() for g in query.genres)), query.genres_mode,
            query.min_rating, query.min_votes, query.kind, query.sort, query.limit,
            query.offset, query.fields, query.facets)  # fmt: skip


def per_item(work: Callable[[], object], count: int) -> float:
    started = time.process_time()
    work()
    return (time.process_time() - started) / count * 1e6


async def measure(args: argparse.Namespace) -> None:
    paths = [line.strip() for line in args.paths.open() if line.strip()]
    raws = [path.partition("?")[2].encode() for path in paths]
    sys.stderr = open(args.log, "w")  # noqa: SIM115 - the access lines, for the whole run
    settings = Settings.from_env(
        os.environ,
        database_url=f"sqlite:///{args.db.resolve()}",
        cache="off",
        search_deadline_ms=10_000,  # CPU is measured here; a loaded machine must not 503
    )
    app = create_app(settings)

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise AssertionError(f"status {message['status']}")

    async with app.router.lifespan_context(app):
        engine = app.state.engine
        queries = [parse_search(query_pairs(raw)) for raw in raws]
        known = {result_key(q): await engine.search(q, engine.deadline()) for q in queries}

        async def answer_known(query: SearchQuery, deadline: Any = None) -> Any:
            return known[result_key(query)]

        engine.search = answer_known
        for path in paths:  # warm
            await app(scope_of(path, HEADERS), _receive, send)
        rows: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            started = time.process_time()
            for path in paths:
                await app(scope_of(path, HEADERS), _receive, send)
            search = (time.process_time() - started) / len(paths) * 1e6
            started = time.process_time()
            for _ in range(args.n):
                await app(scope_of("/health", HEADERS), _receive, send)
            health = (time.process_time() - started) / args.n * 1e6
            rows.setdefault("search, engine answered from memory", []).append(search)
            rows.setdefault("/health", []).append(health)
            print(f"search {search:.1f} us, /health {health:.1f} us", file=sys.__stdout__)
        pairs = [query_pairs(raw) for raw in raws]
        results = list(known.values())
        bodies = [render_search(r) for r in results]
        for _ in range(args.rounds):
            rows.setdefault("  query_pairs alone", []).append(
                per_item(lambda: [query_pairs(raw) for raw in raws], len(raws))
            )
            rows.setdefault("  parse_search alone", []).append(
                per_item(lambda: [parse_search(p) for p in pairs], len(pairs))
            )
            rows.setdefault("  render_search alone", []).append(
                per_item(lambda: [render_search(r) for r in results], len(results))
            )
            rows.setdefault("  ETag (BLAKE2b) alone", []).append(
                per_item(
                    lambda: [hashlib.blake2b(b, digest_size=8).hexdigest() for b in bodies],
                    len(bodies),
                )
            )
    sys.stderr = sys.__stderr__
    print(f"\n| CPU µs per request (median of {args.rounds}) | µs | range |")
    print("| :-- | --: | --: |")
    for label, values in rows.items():
        print(f"| {label} | {statistics.median(values):.1f} | "
              f"{min(values):.1f}-{max(values):.1f} |")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("--paths", type=Path, required=True, help="bench/queries.py's paths file")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("-n", type=int, default=5_000, help="/health requests per round")
    p.add_argument("--log", default="/tmp/http_path_cpu.log", help="where access lines go")
    asyncio.run(measure(p.parse_args()))


if __name__ == "__main__":
    main()
