"""CPU per search on PostgreSQL, in process: the engine's (client) and the backend's, with
the answers written out so two code versions can be checked for identical results.

Why: HTTP figures on a shared 2-core machine move 2-3x between runs; the CPU one search
costs the app process and its PostgreSQL backend does not, and the answers must not move
at all. Runs ``PostgresSearchEngine.search`` over the seeded bench query set at c=1 on a
pool of one connection: one unrecorded pass (plans made, connection warmed), then
``--repeats`` recorded passes. CPU: ``time.process_time`` for this process, ``/proc`` for
the backend; statements: asyncpg's query logger. Run it once per code version (the one
before a change via ``PYTHONPATH=/tmp/before/src``) and compare, ``--answers`` of one
against ``--same-as`` of the other.

    python bench/pg_search_cpu.py --pg-url postgresql+asyncpg://postgres@127.0.0.1:5432/DB \
        --db catalog.db [--per-kind 100] [--repeats 3] [--answers out.json] \
        [--same-as before.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import uvloop

from mdtable import emit_report, markdown_table
from pg_one_trip import backend_cpu, bench_searches, pct
from procs import code_version
from queries import add_query_set_args
from reelsearch.config import Settings
from reelsearch.errors import SearchTimedOut
from reelsearch.search.postgres import PostgresSearchEngine


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pg-url", required=True)
    p.add_argument("--db", type=Path, required=True, help="the SQLite twin (query set)")
    add_query_set_args(p)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--answers", type=Path, help="write every search's result here (JSON)")
    p.add_argument("--same-as", type=Path, help="check every result against this --answers file")
    p.add_argument("--out", type=Path)
    return p.parse_args()


async def measure(args: argparse.Namespace) -> str:
    settings = Settings.from_env(database_url=args.pg_url, db_pool_size=1, db_max_overflow=0)
    cases = [(path, search) for _, path, search in bench_searches(args)]
    engine = await PostgresSearchEngine.open(settings)
    statements: list[str] = []
    async with engine.pool.connection() as conn:
        conn.add_query_logger(lambda record: statements.append(record.query))
        backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
    answers: dict[str, Any] = {}
    timeouts = 0
    try:
        for path, search in cases:  # unrecorded: plans made, pages in cache
            try:
                answers[path] = await engine.search(search)
            except SearchTimedOut:
                answers[path] = "timed out"
        await asyncio.sleep(0.01)  # asyncpg calls its query loggers soon after
        statements.clear()
        server, client = backend_cpu(backend), time.process_time()
        took: list[float] = []
        for _ in range(args.repeats):
            for _, search in cases:
                started = time.perf_counter()
                try:
                    await engine.search(search)
                except SearchTimedOut:
                    timeouts += 1
                took.append((time.perf_counter() - started) * 1000)
        client = time.process_time() - client
        server = backend_cpu(backend) - server
        await asyncio.sleep(0.01)
    finally:
        await engine.close()
    n = len(took)
    same = ""
    encoded = json.loads(json.dumps(answers, default=str, sort_keys=True))
    if args.answers:
        args.answers.write_text(json.dumps(encoded, sort_keys=True))
    if args.same_as:
        other = json.loads(args.same_as.read_text())
        differing = [path for path in encoded if encoded[path] != other.get(path)]
        same = (
            f"\n\nAnswers: {len(encoded) - len(differing)} of {len(encoded)} identical to "
            f"`{args.same_as}`" + "".join(f"\n- differs: `{path}`" for path in differing[:20])
        )
    return (
        f"catalog `{args.pg_url}`, {len(cases)} searches x {args.repeats}, c=1, code "
        f"{code_version()}, load average {os.getloadavg()[0]:.1f}\n\n"
        + markdown_table(
            [
                "PostgreSQL CPU ms/search",
                "client CPU ms/search",
                "total",
                "statements/search",
                "p50 ms",
                "p99 ms",
                "max ms",
                "past the deadline",
            ],
            [
                [
                    f"{1000 * server / n:.3f}",
                    f"{1000 * client / n:.3f}",
                    f"{1000 * (server + client) / n:.3f}",
                    f"{len(statements) / n:.3f}",
                    f"{pct(took, 0.5):.2f}",
                    f"{pct(took, 0.99):.2f}",
                    f"{max(took):.1f}",
                    timeouts,
                ]
            ],
        )  # fmt: skip
        + same
    )


def main() -> None:
    args = parse_args()
    emit_report(uvloop.run(measure(args)), args.out)


if __name__ == "__main__":
    main()
