"""What timing every catalog statement by shape costs a cold search (db/timing.py), one run.

Why: the issue allows metrics 5 % of throughput, and statement timing is the one
part of them on the cold path that the metrics overhead bench's default (cached)
app hardly reaches. Two apps on the same SQLite catalog with the result cache off,
so every request runs its statements:

- ``none``: REELSEARCH_METRICS_ENABLED=false (plain sqlite3 connections, no metrics);
- ``metrics``: metrics on (connections of ``TimedConnection``; every statement timed).

The built-in mix of ``reelsearch profile`` (searches, typos, filters with facets,
autocompletes, details), sent through each app in process in turn (rotated per
round); CPU time of this process per request, median of the rounds, and the median
of each round's ratio to ``none`` (paired, so the neighbours' load cancels).

Part 2 isolates the statement timing from the rest of the metrics: the engine's
searches of the same mix (no HTTP, no app) on a plain sqlite3 connection and on a
``TimedConnection``, alternated per round.

    python bench/statement_timing.py --db ./sample.db --rounds 15
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from mdtable import markdown_table


async def cpu_per_request(
    apps: dict[str, Any], paths: list[str], rounds: int
) -> dict[str, list[float]]:
    from reelsearch.observability.profiling import send_get

    async with contextlib.AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        names = list(apps)
        for name in names:  # warm up: snapshot pages, plan caches
            for path in paths[:200]:
                await send_get(apps[name], path)
        figures: dict[str, list[float]] = {name: [] for name in names}
        for round_ in range(rounds):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                started = time.process_time()
                for path in paths:
                    assert await send_get(apps[name], path) < 500
                figures[name].append((time.process_time() - started) / len(paths) * 1e6)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="a SQLite catalog")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    # Multiprocess metrics as under `reelsearch serve`: set before prometheus-client loads.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="statement-timing-")
    from procs import code_version
    from reelsearch.config import Settings
    from reelsearch.http import create_app
    from reelsearch.observability.profiling import builtin_workload

    url = f"sqlite:///{args.db.resolve()}"
    # A long deadline: on a loaded machine a heavy facet search can pass 500 ms (a 503).
    base = Settings(database_url=url, cache="off", access_log=False, slow_request_ms=0.0,
                    search_deadline_ms=10_000)  # fmt: skip
    paths = builtin_workload(base)
    print(f"{code_version()}; {len(paths)} paths; load average {os.getloadavg()[0]:.1f}")
    apps = {
        "none": create_app(replace(base, metrics_enabled=False)),
        "metrics": create_app(base),
    }
    figures = asyncio.run(cpu_per_request(apps, paths, args.rounds))
    rows = []
    for name, runs in figures.items():
        ratios = sorted(none / mine for none, mine in zip(figures["none"], runs, strict=True))
        rows.append([name, f"{statistics.median(runs):.1f}", f"{statistics.median(ratios):.3f}",
                     f"{ratios[0]:.3f}-{ratios[-1]:.3f}"])  # fmt: skip
    print(f"\nCold requests (cache off), CPU per request, median of {args.rounds} rounds:\n")
    print(markdown_table(["metrics", "CPU µs/request", "throughput vs none", "ratio range"], rows))
    engine_rows = engine_alone(base, paths, args.rounds)
    print(f"\nThe engine alone, CPU per search, median of {args.rounds} rounds:\n")
    print(markdown_table(["connection", "CPU µs/search", "vs plain", "ratio range"], engine_rows))


def engine_alone(settings: Any, paths: list[str], rounds: int) -> list[list[str]]:
    """CPU per search of the engine on a plain and on a timed connection (searches only)."""
    import sqlite3
    from urllib.parse import parse_qsl, urlsplit

    from reelsearch.db.timing import StatementTimes, TimedConnection
    from reelsearch.search.query import parse_search
    from reelsearch.search.readers import SqliteReader, run_inline
    from reelsearch.search.snapshot import CatalogSnapshot
    from reelsearch.search.sql import SQLITE
    from reelsearch.search.tiered import TieredSearch

    queries = [parse_search(parse_qsl(urlsplit(p).query)) for p in paths
               if p.startswith("/v1/search")]  # fmt: skip
    uri = f"file:{Path(settings.sqlite_path).resolve()}?mode=ro"
    plain = sqlite3.connect(uri, uri=True)
    timed = sqlite3.connect(uri, uri=True, factory=TimedConnection)
    timed.times = StatementTimes()
    snapshot = CatalogSnapshot.load(plain)
    tiered = TieredSearch(settings, SQLITE)
    readers = {"plain": SqliteReader(plain), "timed": SqliteReader(timed)}
    for reader in readers.values():  # warm up
        for query in queries:
            run_inline(tiered.search(reader, snapshot, query))
    figures: dict[str, list[float]] = {name: [] for name in readers}
    for round_ in range(rounds):
        order = list(readers) if round_ % 2 == 0 else list(readers)[::-1]
        for name in order:
            started = time.process_time()
            for query in queries:
                run_inline(tiered.search(readers[name], snapshot, query))
            figures[name].append((time.process_time() - started) / len(queries) * 1e6)
    rows = []
    for name, runs in figures.items():
        ratios = sorted(p / m for p, m in zip(figures["plain"], runs, strict=True))
        rows.append([name, f"{statistics.median(runs):.1f}", f"{statistics.median(ratios):.3f}",
                     f"{ratios[0]:.3f}-{ratios[-1]:.3f}"])  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
