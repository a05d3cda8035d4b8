"""Plans and timings of reelsearch-pg's main query shapes, with and without their indexes.

Why: an index earns its place by the plans and times it changes. For each shape (a search of
the API, or a query of the bench's set), the statements the PostgreSQL engine runs are
recorded (a Reader that notes them under ``TieredSearch.search``) and each runs under
EXPLAIN ANALYZE in four settings of one session:

  indexes       as served: every index, a plan for the actual parameter values
  no GIN        enable_bitmapscan off: the tsvector's GIN index is only read through bitmap
                scans, so this is the plan without it (btree index scans stay possible)
  no index      enable_bitmapscan, enable_indexscan and enable_indexonlyscan off: "before"
  generic plan  PREPAREd with plan_cache_mode = force_generic_plan: the plan a pooled
                connection may switch to after five executions of the same statement; the
                'auto picks' column says whether plan_cache_mode = auto did on the sixth

Times are PostgreSQL's execution time (EXPLAIN (ANALYZE, TIMING OFF)), medians of
``--repeats`` (one run when the first takes over a second), summed over the shape's
statements. Then the slowest statement of each shape is shown with its trimmed plans.

    python bench/pg_plans.py --pg-url postgresql+asyncpg://postgres@127.0.0.1:5432/DB \
        [--queries queries.jsonl | --db catalog.db] [--out plans.md]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

import queries as query_gen
from catalog import libpq_dsn, load_movies, load_movies_pg
from mdtable import emit_report, markdown_table
from procs import code_version
from reelsearch.config import Settings
from reelsearch.search.postgres import PostgresSearchEngine
from reelsearch.search.query import SearchQuery, parse_search
from reelsearch.search.readers import PostgresReader, RecordingReader, Statement, numbered

# API shapes (names as in tests/search/test_explain.py); the query set adds one query per kind.
API_SHAPES: dict[str, list[tuple[str, str]]] = {
    "text-prefix-common": [("q", "the")],
    "text-prefix-broad": [("q", "inter")],
    "text-relaxed": [("q", "love qqqqzz")],
    "text+year": [("q", "love"), ("year_from", "1990"), ("year_to", "1999")],
    "text+genres-any": [("q", "love"), ("genres", "Comedy,Drama")],
    "text+sort--year": [("q", "love"), ("sort", "-year")],
    "text+facets": [("q", "love"), ("facets", "genres,decade")],
    "browse-genre": [("genres", "Animation")],
    "browse-year+sort-rating": [("year_from", "1990"), ("sort", "-rating")],
    "browse-sort--votes": [("sort", "-votes")],
}
SETTINGS: dict[str, list[str]] = {
    "indexes": [],
    "no GIN": ["SET enable_bitmapscan = off"],
    "no index": [
        "SET enable_bitmapscan = off",
        "SET enable_indexscan = off",
        "SET enable_indexonlyscan = off",
    ],
}
RESET = ["RESET enable_bitmapscan", "RESET enable_indexscan", "RESET enable_indexonlyscan"]
SLOW_MS = 1000.0  # one run is enough to call a plan slow
PLAN_LINES = 9  # trimmed plans keep this many lines of the tree


@dataclass
class Shape:
    name: str
    params: list[tuple[str, str]]
    statements: list[Statement] = field(default_factory=list)
    ms: dict[str, list[float]] = field(default_factory=dict)  # setting -> per statement
    auto_generic: list[bool] = field(default_factory=list)  # per statement
    plans: dict[str, list[str]] = field(default_factory=dict)  # setting -> text of slowest


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pg-url", required=True)
    p.add_argument("--queries", type=Path, help="queries.jsonl: its first query of each kind")
    p.add_argument("--db", type=Path, help="generate the queries from this SQLite catalog")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--min-votes", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path)
    return p.parse_args(argv)


def make_shapes(args: argparse.Namespace) -> list[Shape]:
    if args.queries:
        qs = query_gen.read_jsonl(args.queries)
    else:
        movies = load_movies(args.db) if args.db else load_movies_pg(args.pg_url)
        qs = query_gen.generate(movies, 1, args.seed, args.min_votes)
    firsts = {q.kind: q for q in reversed(qs)}  # the first of each kind wins
    shapes = [
        Shape(f"{kind}: {q.q!r}", [("q", q.q), *((k, str(v)) for k, v in q.filters.items())])
        for kind, q in reversed(firsts.items())
    ]
    return shapes + [Shape(name, params) for name, params in API_SHAPES.items()]


async def explain_ms(conn: asyncpg.Connection, sql: str, params: Sequence[Any]) -> float:
    raw = await conn.fetchval("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + sql, *params)
    return float(json.loads(raw)[0]["Execution Time"])


async def timed(conn: asyncpg.Connection, sql: str, params: Sequence[Any], repeats: int) -> float:
    runs = [await explain_ms(conn, sql, params)]
    while len(runs) < repeats and runs[0] < SLOW_MS:
        runs.append(await explain_ms(conn, sql, params))
    return statistics.median(runs)


async def text_plan(conn: asyncpg.Connection, sql: str, params: Sequence[Any]) -> list[str]:
    rows = await conn.fetch("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + sql, *params)
    return [row[0] for row in rows]


async def literals(conn: asyncpg.Connection, params: Sequence[Any]) -> str:
    quoted = [await conn.fetchval("SELECT quote_nullable($1::text)", str(v)) for v in params]
    return ", ".join(quoted)


_prepared = itertools.count()


async def generic(
    conn: asyncpg.Connection, sql: str, params: Sequence[Any], repeats: int
) -> tuple[float, bool, list[str]]:
    """(generic plan's time, whether plan_cache_mode=auto chose it on the 6th run, its plan)."""
    name = f"shape_{next(_prepared)}"  # asyncpg caches statements by text: never reuse one
    execute = f"EXECUTE {name}({await literals(conn, params)})" if params else f"EXECUTE {name}"
    await conn.execute(f"PREPARE {name} AS {sql}")
    try:
        for _ in range(5):  # auto decides after five custom plans
            await conn.execute(execute)
        auto_plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + execute))
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        ms = await timed(conn, execute, (), repeats)
        plan = await text_plan(conn, execute, ())
        return ms, "$1" in auto_plan, plan
    finally:
        await conn.execute("RESET plan_cache_mode")
        await conn.execute(f"DEALLOCATE {name}")


async def measure(args: argparse.Namespace, shapes: list[Shape]) -> tuple[int, int]:
    settings = Settings.from_env(database_url=args.pg_url)
    engine = await PostgresSearchEngine.open(settings)
    conn = await asyncpg.connect(libpq_dsn(args.pg_url), server_settings={"jit": "off"})
    try:
        for shape in shapes:
            query: SearchQuery = parse_search(shape.params)
            reader = RecordingReader(PostgresReader(conn), shape.statements)
            await engine.tiered.search(reader, engine.snapshot, query)
            started = time.perf_counter()
            plans: dict[str, list[list[str]]] = {}
            for setting, statements in SETTINGS.items():
                for sql in statements:
                    await conn.execute(sql)
                shape.ms[setting] = []
                plans[setting] = []
                for sql, params in shape.statements:
                    shape.ms[setting].append(await timed(conn, numbered(sql), params, args.repeats))
                    plans[setting].append(await text_plan(conn, numbered(sql), params))
                for sql in RESET:
                    await conn.execute(sql)
            shape.ms["generic plan"] = []
            plans["generic plan"] = []
            for sql, params in shape.statements:
                ms, auto, plan = await generic(conn, numbered(sql), params, args.repeats)
                shape.ms["generic plan"].append(ms)
                shape.auto_generic.append(auto)
                plans["generic plan"].append(plan)
            slowest = max(range(len(shape.statements)), key=lambda i: shape.ms["no index"][i])
            shape.plans = {setting: plans[setting][slowest] for setting in plans}
            shape.plans["statement"] = [shape.statements[slowest][0]]
            print(
                f"  {shape.name}: {len(shape.statements)} statements, "
                + ", ".join(f"{k} {sum(v):.2f} ms" for k, v in shape.ms.items())
                + f" ({time.perf_counter() - started:.1f} s)",
                flush=True,
            )
        return engine.snapshot.movie_count, engine.snapshot.version
    finally:
        await conn.close()
        await engine.close()


def timing_table(shapes: Sequence[Shape]) -> str:
    columns = [*SETTINGS, "generic plan"]
    rows: list[list[object]] = []
    for shape in shapes:
        total = {k: sum(shape.ms[k]) for k in columns}
        rows.append(
            [
                shape.name,
                len(shape.statements),
                *(f"{total[k]:,.2f}" for k in columns),
                f"{total['no index'] / max(total['indexes'], 1e-3):,.0f}×",
                f"{sum(shape.auto_generic)} of {len(shape.auto_generic)}",
            ]
        )
    headers = [
        "shape",
        "statements",
        *(f"{k} ms" for k in columns),
        "no index ÷ indexes",
        "auto picks generic",
    ]
    return markdown_table(headers, rows)


def trimmed(plan: list[str]) -> str:
    tree = [line for line in plan if not line.startswith(("Planning Time", "Execution Time"))]
    tail = [line for line in plan if line.startswith("Execution Time")]
    more = [f"  … ({len(tree) - PLAN_LINES} more lines)"] if len(tree) > PLAN_LINES else []
    return "\n".join([*tree[:PLAN_LINES], *more, *tail])


def plans_section(shapes: Sequence[Shape]) -> str:
    parts = []
    for shape in shapes:
        sql = " ".join(shape.plans["statement"][0].split())
        parts.append(
            f"#### {shape.name}\n\nSlowest statement without indexes: `{sql}`\n\n"
            + "\n\n".join(
                f"{setting}:\n\n```\n{trimmed(shape.plans[setting])}\n```"
                for setting in ("indexes", "no index", "generic plan")
            )
        )
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    shapes = make_shapes(args)
    print(f"{len(shapes)} shapes", flush=True)
    movie_count, version = asyncio.run(measure(args, shapes))
    report = (
        f"## reelsearch-pg: plans with and without indexes\n\n- catalog `{args.pg_url}`, "
        f"{movie_count:,} movies, version {version}; code: {code_version()}; "
        f"{time.strftime('%Y-%m-%d %H:%M:%S %z')}\n- PostgreSQL execution time (EXPLAIN "
        f"(ANALYZE, TIMING OFF)), median of {args.repeats} (1 when over {SLOW_MS:.0f} ms), "
        "summed over each shape's statements\n\n"
        + timing_table(shapes)
        + "\n\n### Plans of each shape's slowest statement (COSTS OFF, TIMING OFF, trimmed)\n\n"
        + plans_section(shapes)
    )
    emit_report(report, args.out)


if __name__ == "__main__":
    main()
