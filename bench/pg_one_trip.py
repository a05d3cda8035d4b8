"""Round trips and time per search on PostgreSQL: the one-statement page against the
algorithm's own statement-by-statement conversation, same process, same connection.

Why: issue 10 part 6 asks for one round trip per search. For each search of the seeded
query set this runs, interleaved, (a) ``TieredSearch.search`` straight on a pooled
connection, every read a round trip (how the engine searched before), and (b)
``PostgresSearchEngine.search`` (the one statement, replayed), counting the statements
each sends (asyncpg's query logger on the pool's connections) and timing each at c=1.
Prints per-kind round trips and time percentiles, and the slowest searches.

    python bench/pg_one_trip.py --pg-url postgresql+asyncpg://postgres@127.0.0.1:5432/DB \
        --db catalog.db [--per-kind 200] [--repeats 3] [--out report.md]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import queries as query_gen
from catalog import load_movies
from engines import Reelsearch
from mdtable import emit_report, markdown_table
from procs import code_version
from queries import add_query_set_args
from reelsearch.config import Settings
from reelsearch.errors import SearchTimedOut
from reelsearch.http.params import query_pairs
from reelsearch.search.postgres import PostgresSearchEngine
from reelsearch.search.query import parse_search
from reelsearch.search.readers import PostgresReader

WAYS = ("statement by statement", "one statement")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pg-url", required=True)
    p.add_argument("--db", type=Path, required=True, help="the SQLite twin (query set)")
    add_query_set_args(p)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path)
    return p.parse_args()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(args: argparse.Namespace) -> str:
    settings = Settings.from_env(database_url=args.pg_url, db_pool_size=1, db_max_overflow=0)
    qs = query_gen.generate(load_movies(args.db), args.per_kind, args.seed, args.min_votes)
    api = Reelsearch("")
    cases = []
    for q in qs:
        path = api.search_path(q.q, q.filters)
        search = parse_search(query_pairs(path.partition("?")[2].encode()))
        cases.append((q, search))
    engine = await PostgresSearchEngine.open(settings)
    statements: list[str] = []
    async with engine.pool.connection() as conn:
        conn.add_query_logger(lambda record: statements.append(record.query))
    trips: dict[str, dict[str, list[int]]] = {w: defaultdict(list) for w in WAYS}
    ms: dict[str, dict[str, list[float]]] = {w: defaultdict(list) for w in WAYS}
    slowest: list[tuple[float, str, str]] = []
    timeouts: list[str] = []
    try:
        for repeat in range(args.repeats):
            for q, search in cases:
                for way in WAYS if repeat % 2 == 0 else WAYS[::-1]:
                    statements.clear()
                    started = time.perf_counter()
                    try:
                        if way == WAYS[0]:
                            async with engine.pool.connection() as conn:
                                await engine.tiered.search(
                                    PostgresReader(conn), engine.snapshot, search
                                )
                        else:
                            await engine.search(search)
                    except SearchTimedOut:
                        timeouts.append(f"{way}: {q.kind} {q.q!r}")
                    took = (time.perf_counter() - started) * 1000
                    ms[way][q.kind].append(took)
                    if repeat == 0:
                        trips[way][q.kind].append(len(statements))
                    if way == WAYS[1]:
                        slowest.append((took, q.kind, q.q))
    finally:
        await engine.close()
    rows: list[list[Any]] = []
    kinds = [*dict.fromkeys(q.kind for q, _ in cases), "all"]
    for way in WAYS:
        for kind in kinds:
            t = [v for k, vs in trips[way].items() if kind in (k, "all") for v in vs]
            m = [v for k, vs in ms[way].items() if kind in (k, "all") for v in vs]
            rows.append([way, kind, f"{statistics.fmean(t):.2f}", max(t),
                         f"{pct(m, 0.5):.2f}", f"{pct(m, 0.99):.2f}", f"{max(m):.2f}"])  # fmt: skip
    slowest.sort(reverse=True)
    slow = "\n".join(f"- {took:.1f} ms  {kind}: {text!r}" for took, kind, text in slowest[:10])
    return (
        f"catalog `{args.pg_url}`, {len(cases)} searches x {args.repeats}, c=1, "
        f"code {code_version()}\n\n"
        + markdown_table(
            ["way", "kind", "round trips (mean)", "max", "p50 ms", "p99 ms", "max ms"], rows
        )
        + "\n\nSlowest searches (one statement):\n\n"
        + slow
        + f"\n\nPast the {settings.search_deadline_ms} ms deadline (counted at it): "
        + (", ".join(timeouts) or "none")
    )


def main() -> None:
    args = parse_args()
    emit_report(asyncio.run(measure(args)), args.out)


if __name__ == "__main__":
    main()
