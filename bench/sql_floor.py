"""What reelsearch-pg adds to PostgreSQL's own time for the same searches: the SQL floor.

Why: an API on PostgreSQL cannot answer faster than PostgreSQL runs its statements. This
records the statements the PostgreSQL engine runs for each search of the load query set (a
Reader that notes them, under ``TieredSearch.search``), then times the same searches at each
layer, c=1, one search at a time, so the difference between two rungs is what that layer
costs:

  server exec      PostgreSQL's execution time of those statements (EXPLAIN (ANALYZE,
                   TIMING OFF)), summed per search
  server plan+exec the same plus planning (EXPLAIN plans every time; the engine's prepared
                   statements mostly do not)
  SQL floor        the statements themselves on one asyncpg connection, prepared as the engine
                   prepares them: client round trips, the floor the API adds to
  SQL floor, custom the same on a connection with plan_cache_mode = force_custom_plan: what
                   the floor would be if no cached generic plan were ever used
  engine, 1 conn   TieredSearch.search on that connection (adds the algorithm in Python)
  engine, pool     PostgresSearchEngine.search (adds the pool checkout; pre-ping on and off)
  API (HTTP)       GET /v1/search on a running reelsearch-pg (httpx, keep-alive)
  /health (HTTP)   the same client on the trivial endpoint: HTTP and client alone

Every rung runs ``--repeats`` times, interleaved; a search's time is its median, and the
table gives percentiles across searches. With ``--wrk-seconds``, wrk at c=1 on the same paths
gives the API's p50 without a Python client.

    python bench/sql_floor.py --pg-url postgresql+asyncpg://postgres@127.0.0.1:5432/DB \
        [--queries queries.jsonl | --db catalog.db] [--reelsearch-url URL] [--out floor.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

import queries as query_gen
from catalog import libpq_dsn, load_movies, load_movies_pg, pg_started_at
from engines import Reelsearch
from load import Target, run_wrk
from mdtable import emit_report, markdown_table
from procs import code_version, reelsearch_server
from queries import Query, add_query_set_args
from reelsearch.config import Settings
from reelsearch.db.postgres import PostgresPool
from reelsearch.http.params import query_pairs
from reelsearch.search.postgres import PostgresSearchEngine
from reelsearch.search.query import SearchQuery, parse_search
from reelsearch.search.readers import PostgresReader, RecordingReader, Statement, numbered

RUNGS = (
    "server exec",
    "server plan+exec",
    "SQL floor",
    "SQL floor, custom plans",
    "engine, 1 conn",
    "engine, pool (pre-ping on)",
    "engine, pool (pre-ping off)",
    "API (HTTP)",
    "/health (HTTP)",
)


@dataclass
class Case:
    """One search of the query set, as every rung sends it."""

    query: Query
    path: str  # the API request path
    search: SearchQuery
    statements: list[Statement] = field(default_factory=list)
    ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    slowest_exec: tuple[float, str] = (0.0, "")  # (server exec ms, statement) of its slowest


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pg-url", required=True, help="postgresql+asyncpg://user@host:port/db")
    p.add_argument("--queries", type=Path, help="queries.jsonl (run.py --workdir, queries.py)")
    p.add_argument(
        "--db",
        type=Path,
        help="generate the queries from this SQLite catalog (default: from "
        "the PostgreSQL catalog itself; the same movies give the same queries)",
    )
    add_query_set_args(p)
    p.add_argument("--repeats", type=int, default=3, help="times each rung runs each search")
    p.add_argument("--reelsearch-url", help="a running reelsearch-pg (default: start one)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--wrk-seconds", type=int, default=8, help="wrk c=1 on the paths; 0: skip")
    p.add_argument("--startup-timeout", type=float, default=300.0)
    p.add_argument("--out", type=Path, help="also write the report (markdown) here")
    return p.parse_args(argv)


def load_cases(args: argparse.Namespace, settings: Settings) -> list[Case]:
    if args.queries:
        qs = query_gen.read_jsonl(args.queries)
    else:
        movies = load_movies(args.db) if args.db else load_movies_pg(args.pg_url)
        qs = query_gen.generate(movies, args.per_kind, args.seed, args.min_votes)
    api = Reelsearch("")
    cases = []
    for q in qs:
        path = api.search_path(q.q, q.filters)
        pairs = query_pairs(path.partition("?")[2].encode())
        search = parse_search(pairs, max_query_chars=settings.max_query_chars)
        cases.append(Case(q, path, search))
    return cases


async def measure(
    cases: list[Case], settings: Settings, repeats: int, base_url: str
) -> tuple[int, int]:
    """Record each case's statements, then run every rung ``repeats`` times, interleaved.
    Return (catalog movies, catalog version) as the engine saw them."""
    engine = await PostgresSearchEngine.open(settings)
    no_ping = Settings.from_env(database_url=settings.database_url, db_pool_pre_ping=False)
    engine_no_ping = PostgresSearchEngine(no_ping, PostgresPool(no_ping), engine.snapshot)
    conn = await asyncpg.connect(
        libpq_dsn(settings.database_url),
        server_settings={"jit": "off"},  # as the pool's
    )
    custom = await asyncpg.connect(
        libpq_dsn(settings.database_url),
        server_settings={"jit": "off", "plan_cache_mode": "force_custom_plan"},
    )
    snapshot, tiered = engine.snapshot, engine.tiered
    try:
        for case in cases:
            await tiered.search(
                RecordingReader(PostgresReader(conn), case.statements), snapshot, case.search
            )
        reader = PostgresReader(conn)

        async def floor(case: Case) -> None:
            for sql, params in case.statements:
                await conn.fetch(numbered(sql), *params)

        async def floor_custom(case: Case) -> None:
            for sql, params in case.statements:
                await custom.fetch(numbered(sql), *params)

        rungs: list[tuple[str, Callable[[Case], Awaitable[object]]]] = [
            ("SQL floor", floor),
            ("SQL floor, custom plans", floor_custom),
            ("engine, 1 conn", lambda c: tiered.search(reader, snapshot, c.search)),
            ("engine, pool (pre-ping on)", lambda c: engine.search(c.search)),
            ("engine, pool (pre-ping off)", lambda c: engine_no_ping.search(c.search)),
        ]
        for repeat in range(repeats):
            print(f"  database rungs, pass {repeat + 1}/{repeats}", flush=True)
            for case in cases:
                plan_ms = exec_ms = 0.0
                for sql, params in case.statements:
                    raw = await conn.fetchval(
                        "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + numbered(sql), *params
                    )
                    top = json.loads(raw)[0]
                    plan_ms += top["Planning Time"]
                    exec_ms += top["Execution Time"]
                    if top["Execution Time"] > case.slowest_exec[0]:
                        case.slowest_exec = (top["Execution Time"], sql)
                case.ms["server exec"].append(exec_ms)
                case.ms["server plan+exec"].append(plan_ms + exec_ms)
                for name, run in rungs:
                    started = time.perf_counter()
                    await run(case)
                    case.ms[name].append((time.perf_counter() - started) * 1000)
            print(f"  HTTP rungs, pass {repeat + 1}/{repeats}", flush=True)
            await asyncio.to_thread(measure_http, cases, base_url)
        return snapshot.movie_count, snapshot.version
    finally:
        await conn.close()
        await custom.close()
        await engine_no_ping.close()
        await engine.close()


def measure_http(cases: list[Case], base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        for case in cases:
            for name, path in (("API (HTTP)", case.path), ("/health (HTTP)", "/health")):
                started = time.perf_counter()
                client.get(path).raise_for_status()
                case.ms[name].append((time.perf_counter() - started) * 1000)


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def per_case(cases: Sequence[Case], rung: str) -> list[float]:
    return [statistics.median(c.ms[rung]) for c in cases]


def ladder_table(cases: Sequence[Case]) -> str:
    rows: list[list[object]] = []
    for rung in RUNGS:
        ms = per_case(cases, rung)
        rows.append(
            [
                rung,
                *(f"{quantile(ms, q):.3f}" for q in (0.5, 0.9, 0.99)),
                f"{statistics.fmean(ms):.3f}",
            ]
        )
    return markdown_table(["per search, c=1", "p50 ms", "p90 ms", "p99 ms", "mean ms"], rows)


def overhead_table(cases: Sequence[Case]) -> str:
    """Each layer's cost: the per-search difference between two rungs, its p50 and mean."""
    steps = [
        ("planning (EXPLAIN's; prepared ones skip most)", "server plan+exec", "server exec"),
        (
            "cached generic plans (floor − floor with custom plans)",
            "SQL floor",
            "SQL floor, custom plans",
        ),
        (
            "round trips, protocol, decoding (custom floor − exec)",
            "SQL floor, custom plans",
            "server exec",
        ),
        ("search algorithm in Python", "engine, 1 conn", "SQL floor"),
        ("pool checkout with pre-ping", "engine, pool (pre-ping on)", "engine, 1 conn"),
        ("pool checkout without pre-ping", "engine, pool (pre-ping off)", "engine, 1 conn"),
        ("HTTP, parsing, JSON (API − engine, pool)", "API (HTTP)", "engine, pool (pre-ping on)"),
        ("**API − SQL floor**", "API (HTTP)", "SQL floor"),
        ("API − SQL floor − /health", "API (HTTP)", "SQL floor"),
    ]
    rows: list[list[object]] = []
    for label, upper, lower in steps:
        diffs = [
            statistics.median(c.ms[upper])
            - statistics.median(c.ms[lower])
            - (statistics.median(c.ms["/health (HTTP)"]) if "/health" in label else 0.0)
            for c in cases
        ]
        rows.append([label, f"{statistics.median(diffs):.3f}", f"{statistics.fmean(diffs):.3f}"])
    return markdown_table(["layer (per search)", "p50 of differences ms", "mean ms"], rows)


def kind_table(cases: Sequence[Case]) -> str:
    rows: list[list[object]] = []
    kinds = list(dict.fromkeys(c.query.kind for c in cases))
    for kind in [*kinds, "all"]:
        group = [c for c in cases if kind in ("all", c.query.kind)]
        floor, api = per_case(group, "SQL floor"), per_case(group, "API (HTTP)")
        exec_ms = per_case(group, "server exec")
        n_statements = [len(c.statements) for c in group]
        rows.append(
            [
                f"**{kind}**" if kind == "all" else kind,
                len(group),
                f"{statistics.fmean(n_statements):.1f} / {max(n_statements)}",
                f"{quantile(exec_ms, 0.5):.3f}",
                f"{quantile(floor, 0.5):.3f}",
                f"{quantile(api, 0.5):.3f}",
                f"{quantile(api, 0.5) / quantile(floor, 0.5):.2f}×",
                f"{quantile(exec_ms, 0.99):.2f}",
                f"{quantile(floor, 0.99):.2f}",
                f"{quantile(api, 0.99):.2f}",
            ]
        )
    headers = [
        "kind",
        "n",
        "statements mean / max",
        "server exec p50",
        "SQL floor p50",
        "API p50",
        "API ÷ floor p50",
        "server exec p99",
        "floor p99",
        "API p99",
    ]
    return markdown_table(headers, rows)


def slowest_table(cases: Sequence[Case], n: int = 8) -> str:
    worst = sorted(cases, key=lambda c: -statistics.median(c.ms["SQL floor"]))[:n]
    rows = [
        [
            json.dumps(c.query.q, ensure_ascii=False)
            + (f" {c.query.filters}" if c.query.filters else ""),
            c.query.kind,
            len(c.statements),
            f"{statistics.median(c.ms['server exec']):.2f}",
            f"{statistics.median(c.ms['SQL floor']):.2f}",
            f"{statistics.median(c.ms['API (HTTP)']):.2f}",
            f"{c.slowest_exec[0]:.2f}: `{_short_sql(c.slowest_exec[1])}`",
        ]
        for c in worst
    ]
    headers = [
        "query",
        "kind",
        "statements",
        "server exec ms",
        "floor ms",
        "API ms",
        "slowest statement (max exec ms)",
    ]
    return markdown_table(headers, rows)


def _short_sql(sql: str, width: int = 110) -> str:
    text = " ".join(sql.split()).replace(
        "m.id, m.title, m.year, m.rating, m.votes, m.genres, m.runtime_min, m.kind", "<cols>"
    )
    return text if len(text) <= width else text[: width - 1] + "…"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = Settings.from_env(database_url=args.pg_url)
    cases = load_cases(args, settings)
    up_since = pg_started_at(args.pg_url)
    print(f"{len(cases)} searches; recording their statements", flush=True)
    with tempfile.TemporaryDirectory(prefix="reelsearch-floor-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        if args.reelsearch_url:
            base_url = args.reelsearch_url.rstrip("/")
        else:
            base_url, _ = stack.enter_context(
                reelsearch_server(
                    "reelsearch-pg",
                    args.pg_url,
                    workdir,
                    workers=args.workers,
                    startup_timeout_s=args.startup_timeout,
                )
            )
        movie_count, version = asyncio.run(measure(cases, settings, args.repeats, base_url))
        wrk_line = ""
        if args.wrk_seconds:
            paths = workdir / "paths.txt"
            paths.write_text("".join(c.path + "\n" for c in cases), encoding="ascii")
            res = run_wrk(Target("reelsearch-pg", base_url, paths), 1, args.wrk_seconds)
            floor_p50 = quantile(per_case(cases, "SQL floor"), 0.5)
            wrk_line = (
                f"\n\nwrk c=1 on the same {len(cases)} paths for {args.wrk_seconds} s: "
                f"{res.rps:,.0f} req/s, p50 {res.p50_us / 1000:.3f} ms, p99 "
                f"{res.p99_us / 1000:.2f} ms, errors {res.errors}; API (wrk) p50 ÷ SQL floor "
                f"p50 = {res.p50_us / 1000 / floor_p50:.2f}×, a difference of "
                f"{res.p50_us / 1000 - floor_p50:.3f} ms."
            )
    n_statements = sum(len(c.statements) for c in cases)
    report = (
        f"## SQL floor vs API, reelsearch-pg\n\n- catalog: `{args.pg_url}`, {movie_count:,} "
        f"movies, version {version}; code: {code_version()}; "
        f"{time.strftime('%Y-%m-%d %H:%M:%S %z')}\n- {len(cases)} searches (seed {args.seed}), "
        f"{n_statements:,} statements ({n_statements / len(cases):.2f} per search); each rung "
        f"{args.repeats}× interleaved, a search's time is its median; pool rungs with "
        f"{settings.db_pool_size}+{settings.db_max_overflow} connections; server: "
        f"{args.reelsearch_url or f'started here, {args.workers} workers'}\n\n"
        + ladder_table(cases)
        + "\n\nWhat each layer adds (per search, difference of two rungs):\n\n"
        + overhead_table(cases)
        + wrk_line
        + "\n\nPer kind (ms):\n\n"
        + kind_table(cases)
        + "\n\nSlowest searches by SQL floor:\n\n"
        + slowest_table(cases)
    )
    if pg_started_at(args.pg_url) != up_since:
        report += "\n\n**PostgreSQL restarted during the run**: rerun before reading it."
    emit_report(report, args.out)


if __name__ == "__main__":
    main()
