"""One command: reelsearch vs Typesense on the same catalog and queries, recall then load.

Why: numbers from different runs, machines or query sets cannot be compared. This starts the
servers on 127.0.0.1 in one run, loads Typesense from reelsearch's own catalog, generates one
seeded query set, measures known-item recall and then wrk throughput/latency, prints markdown
tables (optionally writing them, with the command line, to ``--out``), and stops every server
it started, whatever happens.

With ``--pg-url``, reelsearch on PostgreSQL is a third target ("reelsearch-pg") in the same
run, on the same queries; its catalog must hold the SQLite catalog's movies (checked, and
reported in the setup lines). ``--pg-url NAME=URL`` may be repeated to compare PostgreSQL
catalogs or database settings side by side (each target is named NAME).

    python bench/run.py --db ./reelsearch.db --out bench-report.md
    python bench/run.py --db ./reelsearch.db \
        --pg-url postgresql+asyncpg://postgres@127.0.0.1:5432/reelsearch --out bench-report.md
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
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import queries as query_gen
from catalog import (
    Movie,
    compare_catalogs,
    iter_movies_pg,
    libpq_dsn,
    load_movies,
    pg_started_at,
)
from engines import Engine, Reelsearch
from load import (
    Target,
    health_paths,
    load_table,
    measure,
    parse_concurrency,
    ratio_table,
    ratios_table,
)
from peer_typesense import TypesenseServer
from procs import REELSEARCH_CMD as DEFAULT_CMD
from procs import code_version, reelsearch_server
from queries import Query, add_query_set_args
from recall import evaluate, latency_table, recall_table, write_misses


def parse_pg_target(text: str) -> tuple[str, str]:
    """``[NAME=]postgresql+asyncpg://...`` as (target name, URL)."""
    name, sep, url = text.partition("=")
    if not sep or "://" in name:
        name, url = "reelsearch-pg", text
    if not url.startswith("postgresql"):
        raise argparse.ArgumentTypeError(f"not a postgresql+asyncpg:// URL: {url!r}")
    return name, url


def add_target_args(p: argparse.ArgumentParser) -> None:
    """The options naming the reelsearch targets (also used by relevance.py)."""
    p.add_argument(
        "--reelsearch-cmd",
        default=DEFAULT_CMD,
        help="command starting reelsearch; {host} {port} {workers} {db} are filled "
        "in, and REELSEARCH_DATABASE_URL is set (default: %(default)s)",
    )
    p.add_argument("--workers", type=int, default=2, help="reelsearch workers (default 2)")
    p.add_argument("--reelsearch-url", help="measure an already running reelsearch instead")
    p.add_argument(
        "--no-reelsearch",
        action="store_true",
        help="no reelsearch on SQLite (--db still feeds Typesense and the queries)",
    )
    p.add_argument(
        "--pg-url",
        action="append",
        type=parse_pg_target,
        default=[],
        metavar="[NAME=]URL",
        help="also run reelsearch on this PostgreSQL catalog (postgresql+asyncpg://...) as "
        "target NAME (default 'reelsearch-pg'); it must hold the same movies as --db. "
        "Repeatable. Pool settings come from REELSEARCH_DB_POOL_* in the environment",
    )
    p.add_argument("--startup-timeout", type=float, default=60.0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", type=Path, default=Path("reelsearch.db"), help="reelsearch catalog")
    add_target_args(p)
    add_query_set_args(p)
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    p.add_argument("--runs", type=int, default=3, help="wrk runs per point (median)")
    p.add_argument("--warmup", type=int, default=2, help="seconds of unrecorded wrk per target")
    p.add_argument("--concurrency", type=parse_concurrency, default=[1, 16, 64])
    p.add_argument(
        "--load-per-kind",
        type=int,
        default=0,
        help="load with a separate, larger query set of this many per kind, drawn "
        "from movies with >= --load-min-votes votes (default 0: replay the "
        "recall queries); raise it until 'passes' <= 1 for cold numbers",
    )
    p.add_argument("--load-min-votes", type=int, default=0)
    p.add_argument("--skip-recall", action="store_true")
    p.add_argument("--skip-load", action="store_true")
    p.add_argument(
        "--raw-latency",
        action="store_true",
        help="one wrk thread per connection, so every request's own latency is timed at every "
        "concurrency (p99 raw) beside wrk's corrected p99 (bench/README.md: which latency)",
    )
    p.add_argument(
        "--workdir",
        type=Path,
        help="keep queries, paths, misses and server logs here (default: temp, removed)",
    )
    p.add_argument("--out", type=Path, help="also write the report (markdown) here")
    return p.parse_args(argv)


@contextmanager
def workdir_for(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="reelsearch-bench-") as tmp:
        yield Path(tmp)


@contextmanager
def sqlite_reelsearch(args: argparse.Namespace, workdir: Path) -> Iterator[tuple[str, float]]:
    """Yield (base URL, seconds to ready) of reelsearch, started here unless already running."""
    if args.reelsearch_url:
        yield args.reelsearch_url.rstrip("/"), 0.0
        return
    url = f"sqlite:///{args.db.resolve()}"
    with reelsearch_server(
        "reelsearch",
        url,
        workdir,
        workers=args.workers,
        cmd=args.reelsearch_cmd,
        startup_timeout_s=args.startup_timeout,
    ) as started:
        yield started


def pool_settings() -> str:
    """The pool settings a reelsearch-pg server will read (unset: the config's defaults)."""
    from reelsearch.config import Settings

    settings = Settings.from_env()
    return (
        f"pool size {settings.db_pool_size}, max overflow {settings.db_max_overflow}, "
        f"pre-ping {settings.db_pool_pre_ping} (per worker)"
    )


def server_settings(database_url: str) -> str:
    """The PostgreSQL settings that shape search plans, as a new connection sees them."""
    import psycopg

    names = ("plan_cache_mode", "shared_buffers", "work_mem", "jit", "max_connections")
    with psycopg.connect(libpq_dsn(database_url)) as conn:
        rows = [conn.execute(f"SHOW {name}").fetchone() for name in names]
    return ", ".join(f"{n}={r[0] if r else '?'}" for n, r in zip(names, rows, strict=True))


def catalog_check(movies: list[Movie], pg_url: str) -> str:
    """The setup line saying whether the PostgreSQL catalog holds the SQLite catalog's movies."""
    started = time.perf_counter()
    count, differing = compare_catalogs(movies, iter_movies_pg(pg_url))
    took = time.perf_counter() - started
    if count == len(movies) and differing == 0:
        verdict = (
            "identical to the SQLite catalog (same ids, titles, years, ratings, votes, genres, "
            "kinds"
        )
    else:
        verdict = f"**differs** from the SQLite catalog ({differing:,} movies differ or are missing"
    return f"{count:,} movies, {verdict}; compared in {took:.1f} s)"


def start_reelsearch_targets(
    args: argparse.Namespace, movies: list[Movie], workdir: Path, servers: ExitStack
) -> tuple[list[Reelsearch], list[str]]:
    """Start (or name) reelsearch on SQLite and on each ``--pg-url``, in ``servers``; return
    the engines (SQLite first) and the setup lines saying how each was set up."""
    setup = [
        f"- {name} catalog: `{url}`, {catalog_check(movies, url)}" for name, url in args.pg_url
    ]
    engines: list[Reelsearch] = []
    if not args.no_reelsearch:
        rs_url, waited = servers.enter_context(sqlite_reelsearch(args, workdir))
        how = "" if args.reelsearch_url else f" (`{args.reelsearch_cmd}`)"
        setup.append(
            f"- reelsearch (SQLite): `{rs_url}`, ready {waited:.2f} s after start{how}"
            f", workers={args.workers}"
        )
        engines.append(Reelsearch(rs_url))
    for name, url in args.pg_url:
        pg_url, waited = servers.enter_context(
            reelsearch_server(
                name,
                url,
                workdir,
                workers=args.workers,
                cmd=args.reelsearch_cmd,
                startup_timeout_s=args.startup_timeout,
            )
        )
        setup.append(
            f"- {name} (PostgreSQL): `{pg_url}`, ready {waited:.2f} s after start, "
            f"workers={args.workers}, {pool_settings()}; {server_settings(url)}"
        )
        engines.append(Reelsearch(pg_url, name=name))
    return engines, setup


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds the with-blocks: every server gets stopped


def _loadavg() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def recall_section(
    engines: list[Engine], qs: list[Query], args: argparse.Namespace, workdir: Path
) -> str:
    results = [evaluate(engine, qs) for engine in engines]
    write_misses(results, workdir / "misses.jsonl")
    return (
        f"\n## Known-item recall\n\n{len(qs)} queries, seed {args.seed}, targets drawn with "
        f"P ∝ log(1+votes) among movies with ≥ {args.min_votes} votes.\n\n"
        + recall_table(results)
        + "\n\nLatency of those queries, sent one at a time (client side, keep-alive):\n\n"
        + latency_table(results)
    )


def load_section(targets: list[Target], n_paths: int, args: argparse.Namespace) -> str:
    print(
        f"\nload: {len(targets)} targets, c={args.concurrency}, {args.runs} runs of "
        f"{args.duration} s",
        flush=True,
    )
    res = measure(
        targets, args.concurrency, args.duration, args.runs, args.warmup, raw=args.raw_latency
    )
    threads = "c (one per connection)" if args.raw_latency else "min(2, c)"
    text = (
        f"\n## HTTP load (wrk)\n\nwrk, threads = {threads}, {args.duration} s per run, median "
        f"of {args.runs} runs, {args.warmup} s warm-up per target; {n_paths:,} distinct search "
        "paths per engine replayed in a loop ('passes': times through them per run); "
        "reelsearch's result cache off, Typesense's use_cache off (its default). p99 is wrk's, "
        "corrected for coordinated omission; p99 raw the requests' own, where timed.\n\n"
        + load_table(res, targets, args.concurrency)
    )
    names = [t.name for t in targets]
    sqlite, ts = "reelsearch search", "typesense search"
    pgs = [f"{name} search" for name, _ in args.pg_url]
    if not pgs:
        if sqlite in names:
            text += "\n\n" + ratio_table(res, sqlite, ts, args.concurrency)
        return text
    pairs = [(pg, other) for pg in pgs for other in (sqlite, ts) if other in names]
    if sqlite in names:
        pairs.append((sqlite, ts))
    return (
        text
        + "\n\nRatios of medians (req/s above 1 and p99 below 1 favour the first):\n\n"
        + ratios_table(res, pairs, args.concurrency)
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    load_before = _loadavg()
    command = "python " + shlex.join([sys.argv[0], *(sys.argv[1:] if argv is None else argv)])
    sections: list[str] = []

    def emit(text: str) -> None:
        print(text, flush=True)
        sections.append(text)

    movies = load_movies(args.db)
    with workdir_for(args.workdir) as workdir, TypesenseServer() as ts, ExitStack() as servers:
        ts.load(movies)
        setup = [
            f"- command: `{command}`",
            f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %z')}; machine: {os.cpu_count()} CPUs, "
            f"{platform.platform()}, Python {platform.python_version()}; load average before "
            f"start {load_before} (other load on the machine skews every number)",
            f"- catalog: `{args.db}`, {len(movies):,} movies; code: {code_version()}",
            f"- Typesense 0.24.1: healthy {ts.timings.startup_s:.2f} s after start; imported "
            f"{ts.timings.documents:,} documents in {ts.timings.import_s:.2f} s",
        ]
        pg_up_since = {url: pg_started_at(url) for _, url in args.pg_url}
        rs_engines, rs_setup = start_reelsearch_targets(args, movies, workdir, servers)
        setup += rs_setup
        engines: list[Engine] = [ts.engine, *rs_engines]
        rs_url = None if args.no_reelsearch else rs_engines[0].base_url
        pg_urls = {e.name: e.base_url for e in rs_engines[rs_url is not None :]}
        title = "reelsearch (SQLite, PostgreSQL)" if args.pg_url else "reelsearch"
        emit(f"# {title} vs Typesense\n\n" + "\n".join(setup))

        qs = query_gen.generate(movies, args.per_kind, args.seed, args.min_votes)
        query_gen.write_jsonl(qs, workdir / "queries.jsonl")
        if not args.skip_recall:
            emit(recall_section(engines, qs, args, workdir))

        if not args.skip_load:
            load_qs = qs
            if args.load_per_kind:
                load_qs = query_gen.generate(
                    movies, args.load_per_kind, args.seed, args.load_min_votes
                )
            paths = {e.name: workdir / f"paths-{e.name}.txt" for e in engines}
            n_paths = [query_gen.write_paths(load_qs, e, paths[e.name], args.seed) for e in engines]
            targets = [
                Target("typesense search", ts.base_url, paths["typesense"], ts.engine.headers)
            ]
            if rs_url is not None:
                targets.append(Target("reelsearch search", rs_url, paths["reelsearch"]))
            for name, url in pg_urls.items():
                targets.append(Target(f"{name} search", url, paths[name]))
            health_url = rs_url or next(iter(pg_urls.values()), None)
            if health_url:
                targets.append(Target("reelsearch /health", health_url, health_paths(workdir)))
            emit(load_section(targets, n_paths[0], args))
        emit(f"\nLoad average at the end: {_loadavg()}")
        for url, since in pg_up_since.items():
            now = pg_started_at(url)
            if now != since:
                emit(
                    f"\n**PostgreSQL restarted during the run** (`{url}`: up since {since} at "
                    f"the start, since {now} at the end): its connections were cut, and what "
                    "ran after that ran on a cold server; rerun before reading its figures."
                )
        if args.workdir:
            emit(f"\nArtifacts (queries, paths, misses, reelsearch logs): `{workdir}`")
    if args.out:
        args.out.write_text("\n".join(sections) + "\n", encoding="utf-8")
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
