"""Throughput and p99 of reelsearch on PostgreSQL against its connection pool size.

Why: the pool size is a default every deployment inherits. Too small, and requests queue for a
connection while PostgreSQL idles; too large, and on a small machine the extra backends only
queue inside PostgreSQL, cost memory and count against ``max_connections``. This starts
``reelsearch serve`` on a PostgreSQL catalog once per pool size (``REELSEARCH_DB_POOL_SIZE``,
``REELSEARCH_DB_MAX_OVERFLOW``), puts it under wrk at each concurrency with the bench's query
paths, and prints median req/s and p99 per size. Rounds are interleaved (each round starts the
sizes in a rotated order), so drift on a shared machine hits every size alike.

    python bench/pool_curve.py --pg-url postgresql+asyncpg://postgres@127.0.0.1:5432/DB \
        --sizes 1,2,4,8,16 --concurrency 16,64 --runs 3 --duration 8 [--out curve.md]

A size may carry its overflow: ``8+4`` is pool size 8, max overflow 4 (else ``--overflow``).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

import queries as query_gen
from catalog import libpq_dsn, load_movies, load_movies_pg, pg_started_at
from engines import Reelsearch
from load import Results, Target, WrkResult, parse_concurrency, run_wrk, summarize
from mdtable import emit_report, markdown_table
from procs import code_version, reelsearch_server
from queries import add_query_set_args

# Within this share of the best median throughput counts as "as fast" (run-to-run noise on
# this machine is about that big).
NEAR_BEST = 0.95


@dataclass(frozen=True)
class PoolSize:
    size: int
    overflow: int

    @property
    def label(self) -> str:
        return f"{self.size}+{self.overflow}" if self.overflow else str(self.size)


def parse_sizes(text: str, overflow: int = 0) -> list[PoolSize]:
    sizes = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        size, _, extra = part.partition("+")
        sizes.append(PoolSize(int(size), int(extra) if extra else overflow))
    if not sizes or min(s.size for s in sizes) < 1:
        raise argparse.ArgumentTypeError("sizes: comma-separated positive integers, N or N+M")
    return sizes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pg-url", required=True, help="postgresql+asyncpg://user@host:port/db")
    p.add_argument("--sizes", default="1,2,4,8,16", help="pool sizes, N or N+OVERFLOW")
    p.add_argument("--overflow", type=int, default=0, help="max overflow for plain N sizes")
    p.add_argument("--concurrency", type=parse_concurrency, default=[16, 64])
    p.add_argument("--runs", type=int, default=3, help="rounds; the median is reported")
    p.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    p.add_argument("--warmup", type=int, default=2, help="unrecorded wrk seconds per start")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--queries", type=Path, help="queries.jsonl (default: generate)")
    p.add_argument(
        "--db",
        type=Path,
        help="generate the queries from this SQLite catalog (default: from "
        "the PostgreSQL catalog; the same movies give the same queries)",
    )
    add_query_set_args(p)
    p.add_argument("--startup-timeout", type=float, default=300.0)
    p.add_argument("--out", type=Path, help="also write the report (markdown) here")
    args = p.parse_args(argv)
    args.sizes = parse_sizes(args.sizes, args.overflow)
    return args


def write_paths(args: argparse.Namespace, path: Path) -> int:
    if args.queries:
        qs = query_gen.read_jsonl(args.queries)
    else:
        movies = load_movies(args.db) if args.db else load_movies_pg(args.pg_url)
        qs = query_gen.generate(movies, args.per_kind, args.seed, args.min_votes)
    return query_gen.write_paths(qs, Reelsearch(""), path, args.seed)


def server_connections(database_url: str) -> int:
    """Open connections of reelsearch servers to this database right now."""
    with psycopg.connect(libpq_dsn(database_url)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = 'reelsearch' AND datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def measure(
    args: argparse.Namespace, paths: Path, workdir: Path
) -> tuple[Results, dict[str, list[int]]]:
    results: Results = {}
    connections: dict[str, list[int]] = {}
    for run in range(args.runs):
        shift = run % len(args.sizes)
        for pool in [*args.sizes[shift:], *args.sizes[:shift]]:
            env = {
                "REELSEARCH_DB_POOL_SIZE": str(pool.size),
                "REELSEARCH_DB_MAX_OVERFLOW": str(pool.overflow),
            }
            with reelsearch_server(
                f"reelsearch-pg-pool{pool.label}",
                args.pg_url,
                workdir,
                workers=args.workers,
                env=env,
                startup_timeout_s=args.startup_timeout,
            ) as (base_url, _):
                target = Target(f"pool {pool.label}", base_url, paths)
                if args.warmup:
                    run_wrk(target, max(args.concurrency), args.warmup)
                for c in args.concurrency:
                    res = run_wrk(target, c, args.duration)
                    results.setdefault((target.name, c), []).append(res)
                    print(
                        f"  run {run + 1}/{args.runs} pool {pool.label:<5} c={c:<3} "
                        f"{res.rps:8.0f} req/s  p50 {res.p50_us / 1000:7.2f} ms  "
                        f"p99 {res.p99_us / 1000:7.2f} ms  errors {res.errors}",
                        flush=True,
                    )
                connections.setdefault(pool.label, []).append(server_connections(args.pg_url))
    return results, connections


def curve_table(
    results: Results,
    sizes: list[PoolSize],
    concurrencies: list[int],
    connections: dict[str, list[int]],
) -> str:
    headers = ["pool (size+overflow)", "connections open"]
    for c in concurrencies:
        headers += [f"c={c} req/s", "range", "p50 ms", "p99 ms", "errors"]
    rows: list[list[object]] = []
    for pool in sizes:
        seen = connections.get(pool.label, [])
        row: list[object] = [pool.label, f"{min(seen)}–{max(seen)}" if seen else "-"]
        for c in concurrencies:
            runs: list[WrkResult] = results.get((f"pool {pool.label}", c), [])
            if not runs:
                row += ["-"] * 5
                continue
            s = summarize(runs)
            row += [
                f"{s.rps:,.0f}",
                f"{s.rps_min:,.0f}–{s.rps_max:,.0f}",
                f"{s.p50_us / 1000:.2f}",
                f"{s.p99_us / 1000:.2f}",
                f"{s.errors}/{s.requests:,}",
            ]
        rows.append(row)
    return markdown_table(headers, rows)


def recommend(results: Results, sizes: list[PoolSize], concurrencies: list[int]) -> str:
    """The smallest pool (no overflow) within NEAR_BEST of the best median req/s at every
    concurrency; else the one whose worst ratio to the best is highest. p99s are listed
    beside it: on this shared machine they vary too much from run to run to rank on."""
    plain = sorted((p for p in sizes if not p.overflow), key=lambda p: p.size)
    worst: dict[str, float] = {p.label: 1.0 for p in plain}
    lines = []
    for c in concurrencies:
        runs = {p.label: results.get((f"pool {p.label}", c)) for p in plain}
        summaries = {label: summarize(r) for label, r in runs.items() if r}
        if not summaries:
            continue
        best = max(s.rps for s in summaries.values())
        best_p99 = min(s.p99_us for s in summaries.values())
        for label, s in summaries.items():
            worst[label] = min(worst[label], s.rps / best)
        lines.append(
            f"c={c}: req/s ÷ best ({best:,.0f}) and p99 ÷ best ({best_p99 / 1000:.1f} ms): "
            + ", ".join(
                f"{label} {s.rps / best:.2f}/{s.p99_us / best_p99:.2f}"
                for label, s in summaries.items()
            )
        )
    near = [label for label in worst if worst[label] >= NEAR_BEST]
    if near:
        verdict = (
            f"smallest size within {1 - NEAR_BEST:.0%} of the best req/s at every "
            f"concurrency: **{near[0]}**"
        )
    else:
        top = max(worst, key=lambda label: worst[label])
        verdict = (
            f"no size is within {1 - NEAR_BEST:.0%} of the best at every concurrency; the "
            f"best worst case: **{top}** ({worst[top]:.2f} of the best)"
        )
    return "\n".join(f"- {line}" for line in [*lines, verdict])


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds the with-blocks: the server gets stopped


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    command = "python " + shlex.join([sys.argv[0], *(sys.argv[1:] if argv is None else argv)])
    load_before = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    up_since = pg_started_at(args.pg_url)
    with tempfile.TemporaryDirectory(prefix="reelsearch-pool-") as tmp:
        workdir = Path(tmp)
        paths = workdir / "paths.txt"
        n_paths = write_paths(args, paths)
        print(f"{n_paths} paths; sizes {[p.label for p in args.sizes]}", flush=True)
        results, connections = measure(args, paths, workdir)
    load_after = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    report = (
        f"## reelsearch-pg: pool size curve\n\n- command: `{command}`\n- date: "
        f"{time.strftime('%Y-%m-%d %H:%M:%S %z')}; {os.cpu_count()} CPUs, "
        f"{platform.platform()}; load average {load_before} before, {load_after} after; "
        f"code: {code_version()}\n"
        f"- catalog `{args.pg_url}`; {args.workers} workers, so connections = "
        f"{args.workers} × (size + overflow); {n_paths:,} search paths replayed; wrk "
        f"threads = min(2, c), {args.duration} s per run, median of {args.runs} rounds, a "
        f"fresh server per size and round with {args.warmup} s warm-up; 'connections open': "
        "the servers' backends in pg_stat_activity after the last run of each start\n\n"
        + curve_table(results, args.sizes, args.concurrency, connections)
        + "\n\n"
        + recommend(results, args.sizes, args.concurrency)
    )
    if pg_started_at(args.pg_url) != up_since:
        report += "\n\n**PostgreSQL restarted during the run**: rerun before reading it."
    emit_report(report, args.out)


if __name__ == "__main__":
    main()
