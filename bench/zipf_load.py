"""Result cache under a Zipf stream: reelsearch with its cache vs its /health vs Typesense
0.24.1 with ``use_cache=true``, plus cold (all-miss) throughput with the cache off and on,
all in one run on one machine (docs/decisions/0011-result-cache.md).

The stream: ``--distinct`` known-item queries (bench/queries.py: exact, prefix, typo, word
order, filtered) asked with Zipf(``--exponent``) popularity, written as a paths file that
wrk replays (bench/wrk/paths.lua); Typesense gets the same queries in the same order.
Cold runs replay disjoint slices of never-asked queries, so nothing repeats.

Also reported: server CPU per request (from /proc, the server's process tree) for the Zipf
run, a hits-only run and /health; hit rate and bytes per cache level against the limits.

    python bench/zipf_load.py --db ./reelsearch.db --duration 10 --out report.md
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from catalog import load_movies
from engines import Reelsearch
from load import Target, WrkResult, health_paths, run_wrk
from peer_typesense import TypesenseServer
from procs import reelsearch_server
from queries import generate

ADMIN_TOKEN = "bench-admin"


def zipf_paths(distinct: list[str], length: int, exponent: float, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(distinct) + 1) ** exponent
    ranks = rng.choice(len(distinct), size=length, p=weights / weights.sum())
    return [distinct[int(rank)] for rank in ranks]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="ascii")
    return path


def tree_cpu_seconds(root: int) -> float:
    """utime + stime of ``root`` and its descendants, from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    wanted, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in wanted:
                wanted.add(child)
                frontier.append(child)
    return sum(times.get(pid, 0.0) for pid in wanted)


def server_pid(base_url: str) -> int:
    port = base_url.rsplit(":", 1)[1]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "reelsearch" in cmdline and f"--port {port}" in cmdline:
                return int(entry.name)
    raise RuntimeError(f"no server process for {base_url}")


def cache_stats(base_url: str) -> list[dict[str, Any]]:
    """The admin stats of every worker (asked until each process answered, bounded)."""
    found: dict[str, dict[str, Any]] = {}
    for _ in range(60):  # a new connection each time: the kernel spreads them over workers
        stats = httpx.get(
            f"{base_url}/v1/admin/cache",
            headers={"authorization": f"Bearer {ADMIN_TOKEN}", "connection": "close"},
            timeout=5,
        ).json()
        found[stats["process"]] = stats
    return list(found.values())


def measured(
    target: Target, c: int, duration: int, pid: int | None
) -> tuple[WrkResult, float | None]:
    """One wrk run and the server CPU microseconds per request it cost."""
    before = tree_cpu_seconds(pid) if pid else 0.0
    result = run_wrk(target, c, duration)
    if not pid or not result.requests:
        return result, None
    return result, (tree_cpu_seconds(pid) - before) / result.requests * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("--distinct", type=int, default=20_000, help="distinct queries in the pool")
    p.add_argument(
        "--cold-pool",
        type=int,
        default=60_000,
        help="never-asked queries; each cold run gets a disjoint slice, which must outlast "
        "the run (slice > req/s x --cold-duration) or the cache-on run measures repeats",
    )
    p.add_argument("--stream", type=int, default=200_000, help="length of the Zipf stream")
    p.add_argument("--exponent", type=float, default=1.1)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--cold-duration", type=int, default=5)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--warmup", type=int, default=30, help="seconds of Zipf stream before")
    p.add_argument("--concurrency", default="16,64")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--memory-mib", type=int, default=64)
    p.add_argument("--out", type=Path)
    p.add_argument("--seed", type=int, default=11)
    args = p.parse_args()
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    lines: list[str] = []

    def emit(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    movies = load_movies(args.db)
    per_kind = (args.distinct + args.cold_pool) // 5 + 1
    queries = generate(movies, per_kind=per_kind, seed=args.seed, min_votes=0)
    rng = random.Random(args.seed)
    rng.shuffle(queries)
    rs_engine = Reelsearch("")
    with tempfile.TemporaryDirectory(prefix="reelsearch-zipf-") as tmp, TypesenseServer() as ts:
        work = Path(tmp)
        ts.load(movies)
        ts_engine = ts.engine
        pairs = list(
            dict.fromkeys(
                (rs_engine.search_path(q.q, q.filters), ts_engine.search_path(q.q, q.filters))
                for q in queries
            )
        )
        hot, cold = pairs[: args.distinct], pairs[args.distinct :]
        stream = zipf_paths(
            [f"{i}" for i in range(len(hot))], args.stream, args.exponent, args.seed
        )
        rs_zipf = write(work / "rs_zipf.txt", [hot[int(i)][0] for i in stream])
        ts_zipf = write(work / "ts_zipf.txt", [hot[int(i)][1] + "&use_cache=true" for i in stream])
        rs_hits = write(work / "rs_hits.txt", [hot[i][0] for i in range(100)])
        slice_size = max(1, len(cold) // (2 * args.runs * len(concurrencies)))
        emit(f"cold slices: {slice_size:,} never-asked queries per cold run")
        # Entries stay fresh for the whole run (the default 300 s TTL would expire the
        # warm-up's entries mid-run and measure refreshes, not the steady state).
        common = {
            "REELSEARCH_ADMIN_TOKEN": ADMIN_TOKEN,
            "REELSEARCH_CACHE_WARM_TOP": "0",
            "REELSEARCH_CACHE_TTL": "3600",
        }
        cached_env = {
            **common,
            "REELSEARCH_CACHE": "memory,disk",
            "REELSEARCH_CACHE_DISK_PATH": str(work / "l3"),
            "REELSEARCH_CACHE_MEMORY_BYTES": str(args.memory_mib << 20),
        }
        off_env = {**common, "REELSEARCH_CACHE": "off"}
        url = f"sqlite:///{args.db.resolve()}"
        with (
            reelsearch_server("rs-cache", url, work, workers=args.workers, env=cached_env) as (
                cached_url,
                _,
            ),
            reelsearch_server("rs-off", url, work, workers=args.workers, env=off_env) as (
                off_url,
                _,
            ),
        ):
            cached_pid, off_pid = server_pid(cached_url), server_pid(off_url)
            targets = {
                "reelsearch cached (zipf)": (Target("rs zipf", cached_url, rs_zipf), cached_pid),
                "reelsearch /health": (
                    Target("rs health", cached_url, health_paths(work)),
                    cached_pid,
                ),
                "typesense use_cache (zipf)": (
                    Target("ts zipf", ts.base_url, ts_zipf, ts_engine.headers),
                    None,
                ),
            }
            emit(
                f"## Result cache: Zipf({args.exponent}) stream, {len(hot):,} distinct "
                f"queries, {args.stream:,}-request stream; {args.workers} workers; "
                f"L1 {args.memory_mib} MiB per worker + L3 disk; {args.duration} s per run, "
                f"{args.runs} run(s); cold runs {args.cold_duration} s on never-asked queries"
            )
            emit(
                f"python {' '.join(sys.argv)}  (load average before: "
                f"{Path('/proc/loadavg').read_text().split()[0]})"
            )
            emit()
            # Warm-up, unrecorded: one pass over the whole Zipf stream fills the caches
            # (steady state), a few seconds for the others.
            for name, (target, _) in targets.items():
                run_wrk(target, max(concurrencies), args.warmup if "zipf" in name else 5)
            run_wrk(Target("rs hits", cached_url, rs_hits), 16, 2)
            rows: dict[tuple[str, int], list[tuple[WrkResult, float | None]]] = {}
            for run in range(args.runs):
                for c in concurrencies:
                    for name, (target, pid) in targets.items():
                        rows.setdefault((name, c), []).append(
                            measured(target, c, args.duration, pid)
                        )
                    hits_target = Target("rs hits", cached_url, rs_hits)
                    rows.setdefault(("reelsearch hits only (100 queries)", c), []).append(
                        measured(hits_target, c, args.duration, cached_pid)
                    )
                    for name, base, pid in (
                        ("cold, cache off", off_url, off_pid),
                        ("cold, cache on", cached_url, cached_pid),
                    ):
                        start = (
                            2 * (run * len(concurrencies) + concurrencies.index(c))
                            + (name == "cold, cache on")
                        ) * slice_size
                        paths = write(
                            work / f"cold_{run}_{c}_{name[-3:]}.txt",
                            [cp[0] for cp in cold[start : start + slice_size]],
                        )
                        rows.setdefault((name, c), []).append(
                            measured(Target(name, base, paths), c, args.cold_duration, pid)
                        )
            stats = cache_stats(cached_url)
        emit("| target | c | req/s | p50 ms | p99 ms | errors | server CPU us/request |")
        emit("| --- | --- | --- | --- | --- | --- | --- |")
        summary: dict[tuple[str, int], tuple[float, float]] = {}
        for (name, c), results in rows.items():
            rps = statistics.median(r.rps for r, _ in results)
            p50 = statistics.median(r.p50_us for r, _ in results) / 1000
            p99 = statistics.median(r.p99_us for r, _ in results) / 1000
            cpus = [cpu for _, cpu in results if cpu is not None]
            cpu = f"{statistics.median(cpus):.0f}" if cpus else "-"
            errors = sum(r.errors for r, _ in results)
            summary[(name, c)] = (rps, p99)
            emit(f"| {name} | {c} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {errors} | {cpu} |")
        emit()

        def ratio(a: str, b: str, c: int, i: int) -> float:
            return summary[(a, c)][i] / summary[(b, c)][i]

        emit("| ratio (same run) | " + " | ".join(f"c={c}" for c in concurrencies) + " |")
        emit("| --- |" + " --- |" * len(concurrencies))
        for label, a, b, i in (
            (
                "cached / Typesense use_cache, req/s",
                "reelsearch cached (zipf)",
                "typesense use_cache (zipf)",
                0,
            ),
            (
                "cached / Typesense use_cache, p99",
                "reelsearch cached (zipf)",
                "typesense use_cache (zipf)",
                1,
            ),
            ("cached / /health, req/s", "reelsearch cached (zipf)", "reelsearch /health", 0),
            (
                "hits only / /health, req/s",
                "reelsearch hits only (100 queries)",
                "reelsearch /health",
                0,
            ),
            ("cold cache on / cold cache off, req/s", "cold, cache on", "cold, cache off", 0),
        ):
            emit(
                f"| {label} | "
                + " | ".join(f"{ratio(a, b, c, i):.2f}x" for c in concurrencies)
                + " |"
            )
        emit()
        emit("Cache levels after the run (per worker for memory; the disk level is shared):")
        emit()
        emit(
            "| worker | hit rate | hits memory | hits disk | misses | fast path | level | "
            "entries | bytes | limit |"
        )
        emit("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for n, s in enumerate(stats, 1):
            for level in s["levels"]:
                emit(
                    f"| {n} | {s['hit_rate']} | {s['hits'].get('memory', 0):,} | "
                    f"{s['hits'].get('disk', 0):,} | {s['misses']:,} | {s['fast_path']:,} | "
                    f"{level['name']} | {level['entries']:,} | {level['bytes']:,} | "
                    f"{level['limit_bytes']:,} |"
                )
    if args.out:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    time.sleep(0)


if __name__ == "__main__":
    main()
