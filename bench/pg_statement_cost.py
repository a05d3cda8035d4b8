"""What the PostgreSQL search's one statement returns and costs its backend, per statement.

Why: a search on PostgreSQL is one statement (docs/decisions/0018), run with a generic plan
(0022). Two questions about it need no HTTP server and no app CPU in the way: how many rows
and bytes it sends back (``--capture``: the statements the engine sends for the seeded bench
query set, with their rows per result part and their size on the server,
``pg_column_size``), and how much backend CPU it costs (``--replay``: the captured
statements run in a loop on one connection with generic plans, CPU from /proc, files
alternating). Capture once per code version (the one before a change via
``PYTHONPATH=/tmp/before/src``), then replay both files in one run.

    python bench/pg_statement_cost.py --pg-url postgresql+asyncpg://postgres@127.0.0.1:5432/DB \
        --db catalog.db --capture after.json [--per-kind 100]
    python bench/pg_statement_cost.py --pg-url ... --replay before.json after.json \
        [--seconds 8] [--rounds 2] [--filtered]

``--compare before.json after.json`` pairs the two captures statement by statement (the
same searches in the same order) and, for each pair whose text or parameters differ,
checks that both return the same rows, and reads the shared buffers each touches (hit +
read: what it reads, whatever else the machine does) and its execution time (the fastest
of ``--repeats``, the two alternating); then percentiles over every statement and the
``--top`` slowest before.

    python bench/pg_statement_cost.py --pg-url ... --compare before.json after.json \
        [--repeats 3] [--top 25]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import uvloop

import queries as query_gen
from catalog import libpq_dsn, load_movies
from engines import Reelsearch
from pg_one_trip import backend_cpu
from queries import add_query_set_args
from reelsearch.config import Settings
from reelsearch.http.params import query_pairs
from reelsearch.search.postgres import PostgresSearchEngine
from reelsearch.search.query import parse_search
from reelsearch.search.readers import PostgresReader, numbered

# The one statement's text begins so (search/postgres_page.py).
ONE_STATEMENT = "WITH p AS MATERIALIZED ("
# Filters with an index of their own (search/filters.py): what a generic plan may AND in.
INDEXED_FILTERS = ("m.year >= ", "m.year <= ", "m.kind = ", "m.votes >= ", "m.rating >= ")
PART_NAMES = ("probe", "tier", "page", "count", "typo", "exists", "alternate")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pg-url", required=True)
    p.add_argument("--db", type=Path, help="the SQLite twin (query set), for --capture")
    add_query_set_args(p)
    p.add_argument("--capture", type=Path, help="write the statements the engine sends here")
    p.add_argument("--replay", type=Path, nargs="+", help="captured files to replay")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--filtered", action="store_true", help="only statements with such filters")
    p.add_argument("--compare", type=Path, nargs=2, help="two captures: rows, buffers, time")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--top", type=int, default=25)
    return p.parse_args()


async def capture(args: argparse.Namespace) -> None:
    """Run the bench set through the engine; write its one statements and report their output."""
    settings = Settings.from_env(database_url=args.pg_url, db_pool_size=1, db_max_overflow=0)
    qs = query_gen.generate(load_movies(args.db), args.per_kind, args.seed, args.min_votes)
    api = Reelsearch("")
    engine = await PostgresSearchEngine.open(settings)
    sent: list[tuple[str, tuple[Any, ...], list[Any]]] = []
    original = PostgresReader.rows

    async def rows(self: PostgresReader, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        found = await original(self, sql, params)
        sent.append((sql, tuple(params), found))
        return found

    PostgresReader.rows = rows  # type: ignore[method-assign]
    try:
        for q in qs:
            path = api.search_path(q.q, q.filters)
            await engine.search(parse_search(query_pairs(path.partition("?")[2].encode())))
    finally:
        PostgresReader.rows = original  # type: ignore[method-assign]
    ones = [(sql, params, found) for sql, params, found in sent if sql.startswith(ONE_STATEMENT)]
    counts, sizes, parts = [], [], Counter[int]()
    async with engine.pool.connection() as conn:
        for sql, params, found in ones:
            wrapped = f"SELECT count(*), sum(pg_column_size(x.*)) FROM ({numbered(sql)}) AS x"
            n, size = await conn.fetchrow(wrapped, *params)
            counts.append(n)
            sizes.append(size or 0)
            parts.update(row[0] for row in found)
    await engine.close()
    args.capture.write_text(json.dumps([[numbered(sql), list(p)] for sql, p, _ in ones]))
    per_part = ", ".join(f"{PART_NAMES[k]} {v / len(ones):.2f}" for k, v in sorted(parts.items()))
    print(
        f"{len(qs)} searches sent {len(sent)} statements, {len(ones)} of them the one statement.\n"
        f"rows per statement: mean {statistics.mean(counts):.1f}, median "
        f"{statistics.median(counts):.0f}, max {max(counts)}; bytes (pg_column_size of the "
        f"rows): mean {statistics.mean(sizes):.0f}, median {statistics.median(sizes):.0f}, "
        f"max {max(sizes)}\nrows per statement by part: {per_part}"
    )


def load(path: Path, filtered: bool) -> list[tuple[str, list[Any]]]:
    statements = [(sql, params) for sql, params in json.loads(path.read_text())]
    if filtered:
        statements = [s for s in statements if any(f in s[0] for f in INDEXED_FILTERS)]
    return statements


async def replay(args: argparse.Namespace) -> None:
    """Backend CPU per statement of each file, on one connection with generic plans."""
    files = {path.name: load(path, args.filtered) for path in args.replay}
    conn = await asyncpg.connect(
        libpq_dsn(args.pg_url),
        statement_cache_size=1000,  # every text of every file stays prepared
        server_settings={"jit": "off", "plan_cache_mode": "force_generic_plan"},
    )
    try:
        backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
        for statements in files.values():  # prepared and planned once, pages cached
            for sql, params in statements:
                await conn.fetch(sql, *params)
        results: dict[str, list[float]] = {name: [] for name in files}
        for round_ in range(args.rounds):
            for name in list(files) if round_ % 2 == 0 else list(files)[::-1]:
                statements, done = files[name], 0
                cpu, stop = backend_cpu(backend), time.monotonic() + args.seconds
                while time.monotonic() < stop:
                    for sql, params in statements:
                        await conn.fetch(sql, *params)
                    done += len(statements)
                per = 1e6 * (backend_cpu(backend) - cpu) / done
                results[name].append(per)
                print(f"round {round_ + 1} {name}: {done} statements, backend {per:.0f} µs each")
    finally:
        await conn.close()
    for name, runs in results.items():
        print(f"{name}: {len(files[name])} statements, median backend CPU "
              f"{statistics.median(runs):.0f} µs per statement")  # fmt: skip


async def buffers_and_ms(
    conn: asyncpg.Connection, sql: str, params: Sequence[Any]
) -> tuple[int, float]:
    """Shared buffers the statement touched (hit + read) and its execution time (ms)."""
    found = await conn.fetchval("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, *params)
    plan = json.loads(found)[0]
    top = plan["Plan"]
    return top["Shared Hit Blocks"] + top["Shared Read Blocks"], plan["Execution Time"]


async def compare(args: argparse.Namespace) -> None:
    """Each pair of statements of two captures: same rows?, buffers, fastest time."""
    before, after = (load(path, False) for path in args.compare)
    if len(before) != len(after):
        print(f"captures differ in length ({len(before)}, {len(after)}): pairing the first")
    conn = await asyncpg.connect(
        libpq_dsn(args.pg_url),
        statement_cache_size=0,
        server_settings={"jit": "off", "plan_cache_mode": "force_generic_plan"},
    )
    pairs: list[tuple[int, int, float, float, str]] = []
    differing = other_rows = 0
    try:
        for (sql_a, params_a), (sql_b, params_b) in zip(before, after, strict=False):
            blocks_a, _ = await buffers_and_ms(conn, sql_a, params_a)
            blocks_b, times = blocks_a, ([], [])
            same = (sql_a, params_a) == (sql_b, params_b)
            if not same:
                differing += 1
                blocks_b, _ = await buffers_and_ms(conn, sql_b, params_b)
            found: list[list[tuple[str, ...]]] = [[], []]
            for _ in range(args.repeats):
                for side, (sql, params) in enumerate(((sql_a, params_a), (sql_b, params_b))):
                    started = time.perf_counter()
                    rows = await conn.fetch(sql, *params)
                    times[side].append((time.perf_counter() - started) * 1000)
                    found[side] = sorted(tuple(map(str, row)) for row in rows)
            other_rows += found[0] != found[1]
            pairs.append((blocks_a, blocks_b, min(times[0]), min(times[1]), str(params_a[:2])))
    finally:
        await conn.close()

    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    print(f"{len(pairs)} statements, {differing} differ in text or parameters; "
          f"{other_rows} pairs returned other rows")  # fmt: skip
    for side, name in enumerate(path.name for path in args.compare):
        blocks = [float(pair[side]) for pair in pairs]
        ms = [pair[2 + side] for pair in pairs]
        print(
            f"{name}: shared buffers p50 {pct(blocks, 0.5):.0f} p90 {pct(blocks, 0.9):.0f} "
            f"p99 {pct(blocks, 0.99):.0f} max {max(blocks):.0f} sum {sum(blocks):.0f}; "
            f"ms p50 {pct(ms, 0.5):.2f} p90 {pct(ms, 0.9):.2f} p99 {pct(ms, 0.99):.2f} "
            f"max {max(ms):.1f} sum {sum(ms):.0f}"
        )
    print("buffers before, after; ms before, after; the first parameters")
    for pair in sorted(pairs, key=lambda pair: -pair[2])[: args.top]:
        print(f"{pair[0]:7d} {pair[1]:7d} {pair[2]:8.2f} {pair[3]:8.2f}  {pair[4][:90]}")


def main() -> None:
    args = parse_args()
    if args.capture:
        uvloop.run(capture(args))
    if args.replay:
        uvloop.run(replay(args))
    if args.compare:
        uvloop.run(compare(args))


if __name__ == "__main__":
    main()
