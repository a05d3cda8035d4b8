"""CPU per cold search over HTTP on PostgreSQL: the app's processes and PostgreSQL's backends.

Why: on a 2-core machine shared with PostgreSQL (and, here, with other engineers' work),
req/s moves 2-3x from run to run; the CPU a search costs does not. For each code version
(``--cmd NAME=COMMAND``, e.g. the code before a change via PYTHONPATH) this starts
``reelsearch serve`` on the PostgreSQL catalog (result cache off), runs wrk at concurrency
``--concurrency`` over the seeded bench query set, and reads from /proc the user + system
CPU of the server's processes and of every PostgreSQL backend connected to the catalog's
database, and from ``pg_stat_database`` the statements (autocommit transactions) it ran.
Versions alternate, ``--rounds`` times; the table has the median per version.

    python bench/pg_cpu_per_request.py --pg-url postgresql+asyncpg://postgres@127.0.0.1:5432/DB \
        --db catalog.db --cmd "before=env PYTHONPATH=/tmp/before/src python -m reelsearch serve \
        --host {host} --port {port} --workers {workers}" --cmd "after=reelsearch serve \
        --host {host} --port {port} --workers {workers}" --port 18401 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shlex
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import asyncpg

import queries as query_gen
from catalog import libpq_dsn, load_movies
from engines import Reelsearch
from mdtable import emit_report, markdown_table
from pg_one_trip import backend_cpu
from procs import ServerProcess
from queries import add_query_set_args

_WRK_LUA = Path(__file__).parent / "wrk" / "paths.lua"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pg-url", required=True)
    p.add_argument("--db", type=Path, required=True, help="the SQLite twin (query set)")
    p.add_argument("--cmd", action="append", required=True, metavar="NAME=COMMAND")
    p.add_argument("--port", type=int, default=18401)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--duration", type=int, default=6)
    p.add_argument("--rounds", type=int, default=3)
    add_query_set_args(p)
    p.add_argument("--out", type=Path)
    return p.parse_args()


def process_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) these processes have used; gone ones count 0."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += backend_cpu(pid)
    return total


def descendants(pid: int) -> list[int]:
    found = [pid]
    for child in subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False
    ).stdout.split():
        found += descendants(int(child))
    return found


async def backends_and_statements(dsn: str) -> tuple[list[int], int]:
    """The PostgreSQL backends of the app (by application name) and the database's
    committed transactions so far (one per autocommit statement)."""
    conn = await asyncpg.connect(dsn)
    try:
        pids = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'reelsearch'"
        )
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        commits = await conn.fetchval(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
        return [row[0] for row in pids], int(commits)
    finally:
        await conn.close()


def wrk(base_url: str, paths: Path, concurrency: int, duration: int) -> dict[str, int]:
    """Run wrk over the paths; its summary (requests, latencies in µs, errors)."""
    out = subprocess.run(
        ["wrk", f"-t{min(2, concurrency)}", f"-c{concurrency}", f"-d{duration}s",
         "-s", str(_WRK_LUA), base_url, "--", str(paths), str(min(2, concurrency))],
        capture_output=True, text=True, check=True, timeout=duration + 30,
    ).stdout  # fmt: skip
    found = re.search(r"^BENCH_RESULT (.*)$", out, re.MULTILINE)
    assert found is not None, out
    summary: dict[str, int] = json.loads(found.group(1))
    return summary


def measure_once(
    name: str, cmd: str, args: argparse.Namespace, paths: Path, workdir: Path
) -> dict[str, float]:
    argv = shlex.split(
        cmd.format(host="127.0.0.1", port=args.port, workers=args.workers, db=args.pg_url)
    )
    env = {"REELSEARCH_CACHE": "off", **os.environ, "REELSEARCH_DATABASE_URL": args.pg_url}
    dsn = libpq_dsn(args.pg_url)
    base = f"http://127.0.0.1:{args.port}"
    with ServerProcess(name, argv, workdir / f"{name}.log", env) as server:
        server.wait_healthy(f"{base}/ready", 120)
        wrk(base, paths, args.concurrency, 2)  # warm-up: every connection opened, plans made
        assert server.pid is not None
        app = descendants(server.pid)
        backends, _ = asyncio.run(backends_and_statements(dsn))
        time.sleep(1.2)  # statistics are flushed at most once a second
        _, commits_before = asyncio.run(backends_and_statements(dsn))
        app_before, pg_before = process_cpu(app), process_cpu(backends)
        summary = wrk(base, paths, args.concurrency, args.duration)
        requests = summary["requests"]
        app_after, pg_after = process_cpu(app), process_cpu(backends)
        time.sleep(1.2)
        _, commits_after = asyncio.run(backends_and_statements(dsn))
    # The two statistics reads are statements on the database too: not the app's.
    statements = commits_after - commits_before - 2
    return {
        "req/s": requests / args.duration,
        "app": 1e6 * (app_after - app_before) / requests,
        "pg": 1e6 * (pg_after - pg_before) / requests,
        "statements": statements / requests,
        "p50": summary["p50_us"] / 1000,
        "p99": summary["p99_us"] / 1000,
        "errors": summary["status_errors"] + summary["timeouts"],
    }


def main() -> None:
    args = parse_args()
    cmds = [tuple(text.split("=", 1)) for text in args.cmd]
    qs = query_gen.generate(load_movies(args.db), args.per_kind, args.seed, args.min_votes)
    api = Reelsearch("")
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in cmds}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="pg-cpu-") as tmp:
        workdir = Path(tmp)
        paths = workdir / "paths.txt"
        paths.write_text("".join(api.search_path(q.q, q.filters) + "\n" for q in qs))
        for round_ in range(args.rounds):
            for name, cmd in cmds if round_ % 2 == 0 else cmds[::-1]:
                found = measure_once(name, cmd, args, paths, workdir)
                print(
                    f"round {round_ + 1} {name}: {found['req/s']:.0f} req/s, app "
                    f"{found['app']:.0f} us, PostgreSQL {found['pg']:.0f} us, "
                    f"{found['statements']:.2f} statements per search, p50 {found['p50']:.2f} "
                    f"ms, p99 {found['p99']:.2f} ms, {found['errors']:.0f} errors",
                    flush=True,
                )
                results[name].append(found)
    load.append(os.getloadavg()[0])
    rows = []
    for name, runs in results.items():
        med = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        rows.append([name, f"{med['req/s']:,.0f}", f"{med['app']:.0f}", f"{med['pg']:.0f}",
                     f"{med['app'] + med['pg']:.0f}", f"{med['statements']:.2f}",
                     f"{med['p50']:.2f}", f"{med['p99']:.2f}",
                     f"{sum(run['errors'] for run in runs):.0f}"])  # fmt: skip
    emit_report(
        f"{len(qs)} searches in a loop, wrk c={args.concurrency}, {args.duration} s, "
        f"{args.workers} workers, result cache off; medians of {args.rounds} rounds; load "
        f"average {load[0]:.1f} at start, {load[1]:.1f} at end\n\n"
        + markdown_table(
            [
                "code",
                "req/s",
                "app CPU µs/search",
                "PostgreSQL CPU µs/search",
                "total µs/search",
                "statements/search",
                "p50 ms",
                "p99 ms",
                "errors (all rounds)",
            ],
            rows,
        ),  # fmt: skip
        args.out,
    )


if __name__ == "__main__":
    main()
