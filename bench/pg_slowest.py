"""The slowest searches of the bench's query set on PostgreSQL, and where their one
statement spends its time.

Why: at 1 M titles PostgreSQL's p99 is made of a few broad probes (issue 10 part 6),
not of the average search; finding them takes each search's own time. Runs
``PostgresSearchEngine.search`` over the seeded query set at c=1 in process (one
unrecorded pass, then ``--repeats`` passes; each search's fastest pass, the one least
disturbed by a shared machine's other work), prints the percentiles and the ``--top``
slowest searches, and for each of those the statements it sent with ``EXPLAIN
(ANALYZE, BUFFERS)``'s time per CTE (the probe ``p``, the window ``uw``, GIN past it
``ug``, the title-start index ``us``, the tiers ``t``, typo matches ``f``).

    python bench/pg_slowest.py --pg-url postgresql+asyncpg://postgres@127.0.0.1:5432/DB \
        --db catalog.db [--per-kind 200] [--repeats 3] [--top 15] [--plans 5] [--out r.md]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import time
from pathlib import Path
from typing import Any

import uvloop

from mdtable import emit_report, markdown_table
from pg_one_trip import bench_searches, pct
from procs import code_version
from queries import add_query_set_args
from reelsearch.config import Settings
from reelsearch.errors import SearchTimedOut
from reelsearch.search.postgres import PostgresSearchEngine

# "CTE p" ... "(actual time=0.1..47.3 rows=1001 loops=1)"
_CTE = re.compile(r"^\s*CTE (\w+)\s*$")
_ACTUAL = re.compile(r"actual time=[\d.]+\.\.([\d.]+) rows=(\d+) loops=(\d+)")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pg-url", required=True)
    p.add_argument("--db", type=Path, required=True, help="the SQLite twin (query set)")
    add_query_set_args(p)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--plans", type=int, default=5, help="EXPLAIN this many of the slowest")
    p.add_argument("--out", type=Path)
    return p.parse_args()


def cte_times(plan: list[str]) -> str:
    """Each CTE's own finishing time and rows, from an EXPLAIN ANALYZE text plan."""
    found: list[str] = []
    for i, line in enumerate(plan):
        name = _CTE.match(line)
        if name and i + 1 < len(plan):
            actual = _ACTUAL.search(plan[i + 1])
            if actual:
                found.append(f"{name.group(1)} {float(actual.group(1)):.1f} ms/{actual.group(2)}")
    return ", ".join(found)


async def measure(args: argparse.Namespace) -> str:
    settings = Settings.from_env(database_url=args.pg_url, db_pool_size=1, db_max_overflow=0)
    cases = [(path, search) for _, path, search in bench_searches(args)]
    engine = await PostgresSearchEngine.open(settings)
    sent: list[tuple[str, tuple[Any, ...]]] = []
    async with engine.pool.connection() as conn:
        conn.add_query_logger(lambda record: sent.append((record.query, record.args)))
    took: dict[str, list[float]] = {path: [] for path, _ in cases}
    statements: dict[str, list[tuple[str, tuple[Any, ...]]]] = {}
    try:
        for _, search in cases:  # unrecorded: plans made, pages in cache
            with contextlib.suppress(SearchTimedOut):
                await engine.search(search)
        for _ in range(args.repeats):
            for path, search in cases:
                await asyncio.sleep(0)
                sent.clear()
                started = time.perf_counter()
                with contextlib.suppress(SearchTimedOut):
                    await engine.search(search)
                took[path].append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(0.001)  # asyncpg calls its query loggers soon after
                statements[path] = list(sent)
        fastest = {path: min(times) for path, times in took.items()}
        slowest = sorted(fastest, key=fastest.__getitem__, reverse=True)[: args.top]
        plans: dict[str, str] = {}
        async with engine.pool.connection() as conn:
            for path in slowest[: args.plans]:
                parts = []
                for query, params in statements[path]:
                    if not query.lstrip().upper().startswith(("WITH", "SELECT")):
                        continue
                    rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + query, *params)
                    lines = [row[0] for row in rows]
                    parts.append(f"{cte_times(lines)}; {lines[-1].strip()}")
                plans[path] = " / ".join(parts)
    finally:
        await engine.close()
    all_times = list(fastest.values())
    rows = [
        [
            f"`{path.partition('?')[2]}`",
            f"{fastest[path]:.1f}",
            len(statements[path]),
            plans.get(path, ""),
        ]
        for path in slowest
    ]
    return (
        f"catalog `{args.pg_url}`, {len(cases)} searches, fastest of {args.repeats}, c=1, code "
        f"{code_version()}, load average {os.getloadavg()[0]:.1f}\n\n"
        f"p50 {pct(all_times, 0.5):.2f} ms, p90 {pct(all_times, 0.9):.2f} ms, "
        f"p99 {pct(all_times, 0.99):.2f} ms, max {max(all_times):.1f} ms\n\n"
        + markdown_table(
            ["search", "ms (fastest)", "statements", "EXPLAIN ANALYZE: CTE ms/rows"], rows
        )
    )


def main() -> None:
    args = parse_args()
    emit_report(uvloop.run(measure(args)), args.out)


if __name__ == "__main__":
    main()
