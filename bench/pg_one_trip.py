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
import os
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
from reelsearch.search.query import SearchQuery, parse_search
from reelsearch.search.readers import PostgresReader, RecordingReader, Statement, numbered

WAYS = ("statement by statement", "one statement")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pg-url", required=True)
    p.add_argument("--db", type=Path, required=True, help="the SQLite twin (query set)")
    add_query_set_args(p)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--explain",
        action="append",
        default=[],
        metavar="QUERY",
        help="instead: EXPLAIN ANALYZE this search's statements both ways (repeatable; "
        "a query string such as 'q=love&limit=10')",
    )
    p.add_argument("--out", type=Path)
    return p.parse_args()


async def explain(args: argparse.Namespace) -> str:
    """The plans of the searches in ``--explain``: statement by statement, then the one."""
    settings = Settings.from_env(database_url=args.pg_url, db_pool_size=1, db_max_overflow=0)
    engine = await PostgresSearchEngine.open(settings)
    out: list[str] = []
    try:
        async with engine.pool.connection() as conn:
            for text in args.explain:
                search = parse_search(query_pairs(text.encode()))
                for way in WAYS:
                    seen: list[Statement] = []
                    recorder = RecordingReader(PostgresReader(conn), seen)
                    if way == WAYS[0]:
                        await engine.tiered.search(recorder, engine.snapshot, search)
                    else:
                        replay = await engine.read_page(
                            recorder, engine.snapshot, search, count=True
                        )
                        await engine.tiered.search(replay, engine.snapshot, search)
                    total = 0.0
                    plans: list[str] = []
                    for sql, params in seen:
                        lines = [
                            row[0]
                            for row in await conn.fetch(
                                "EXPLAIN (ANALYZE, BUFFERS, TIMING ON) " + numbered(sql), *params
                            )
                        ]
                        total += sum(
                            float(line.split(":")[1].split()[0])
                            for line in lines
                            if line.startswith(("Planning Time", "Execution Time"))
                        )
                        plans.append("\n".join(lines))
                    out.append(
                        f"### `{text}`, {way}: {len(seen)} statements, {total:.2f} ms planned "
                        "and run\n\n```\n" + "\n\n".join(plans) + "\n```\n"
                    )
    finally:
        await engine.close()
    return "\n".join(out)


_TICK = os.sysconf("SC_CLK_TCK")


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process on this machine has used (a PostgreSQL
    backend, or a server of the bench)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def bench_searches(args: argparse.Namespace) -> list[tuple[Any, str, SearchQuery]]:
    """The bench's generated queries (``add_query_set_args``), each with the path the
    HTTP benches send for it and that path parsed as the server parses it."""
    api = Reelsearch("")
    found = []
    for q in query_gen.generate(load_movies(args.db), args.per_kind, args.seed, args.min_votes):
        path = api.search_path(q.q, q.filters)
        found.append((q, path, parse_search(query_pairs(path.partition("?")[2].encode()))))
    return found


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(args: argparse.Namespace) -> str:
    settings = Settings.from_env(database_url=args.pg_url, db_pool_size=1, db_max_overflow=0)
    cases = [(q, search) for q, _, search in bench_searches(args)]
    engine = await PostgresSearchEngine.open(settings)
    statements: list[str] = []
    async with engine.pool.connection() as conn:
        conn.add_query_logger(lambda record: statements.append(record.query))
        backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
    cpu = {w: [0.0, 0.0, 0] for w in WAYS}  # PostgreSQL's, this process's (s), searches
    trips: dict[str, dict[str, list[int]]] = {w: defaultdict(list) for w in WAYS}
    ms: dict[str, dict[str, list[float]]] = {w: defaultdict(list) for w in WAYS}
    slowest: list[tuple[float, str, str]] = []
    timeouts: list[str] = []
    try:
        for repeat in range(args.repeats):
            for q, search in cases:
                for way in WAYS if repeat % 2 == 0 else WAYS[::-1]:
                    statements.clear()
                    server_before, client_before = backend_cpu(backend), time.process_time()
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
                    client_cpu = time.process_time() - client_before
                    cpu[way][0] += backend_cpu(backend) - server_before
                    cpu[way][1] += client_cpu
                    cpu[way][2] += 1
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
    cpu_rows = [
        [way, f"{1000 * s / n:.3f}", f"{1000 * c / n:.3f}", f"{1000 * (s + c) / n:.3f}"]
        for way, (s, c, n) in cpu.items()
    ]
    (s0, c0, n0), (s1, c1, n1) = cpu[WAYS[0]], cpu[WAYS[1]]
    cpu_rows.append(
        ["one ÷ statement by statement", f"{(s1 / n1) / (s0 / n0):.2f}x",
         f"{(c1 / n1) / (c0 / n0):.2f}x", f"{((s1 + c1) / n1) / ((s0 + c0) / n0):.2f}x"]
    )  # fmt: skip
    slowest.sort(reverse=True)
    slow = "\n".join(f"- {took:.1f} ms  {kind}: {text!r}" for took, kind, text in slowest[:10])
    return (
        f"catalog `{args.pg_url}`, {len(cases)} searches x {args.repeats}, c=1, "
        f"code {code_version()}\n\n"
        + markdown_table(
            ["way", "kind", "round trips (mean)", "max", "p50 ms", "p99 ms", "max ms"], rows
        )
        + "\n\nCPU per search (the PostgreSQL backend's, from /proc, and this process's; "
        "what bounds throughput on a machine whose cores are all busy):\n\n"
        + markdown_table(["way", "PostgreSQL ms", "client ms", "total ms"], cpu_rows)
        + "\n\nSlowest searches (one statement):\n\n"
        + slow
        + f"\n\nPast the {settings.search_deadline_ms} ms deadline (counted at it): "
        + (", ".join(timeouts) or "none")
    )


def main() -> None:
    args = parse_args()
    emit_report(asyncio.run(explain(args) if args.explain else measure(args)), args.out)


if __name__ == "__main__":
    main()
