"""Result cache under a Zipf stream: reelsearch with its cache vs its /health vs Typesense
0.24.1 with ``use_cache=true``, plus cold (all-miss) throughput with the cache off and on,
all in one run on one machine (docs/decisions/0011-result-cache.md).

The stream: ``--distinct`` known-item queries (bench/queries.py: exact, prefix, typo, word
order, filtered) asked with Zipf(``--exponent``) popularity, written as a paths file that
wrk replays (bench/wrk/paths.lua); Typesense gets the same queries in the same order.
Cold runs replay disjoint slices of never-asked queries, so nothing repeats.

Also reported: server CPU per request (from /proc, the server's process tree) for the Zipf
run, a hits-only run and /health; hit rate and bytes per cache level against the limits.

The same run also measures what observability costs over HTTP: the same rows on servers
with ``REELSEARCH_METRICS_ENABLED=false REELSEARCH_ACCESS_LOG=false`` ("quiet"), and,
with ``--before-cmd``, another checkout's server (the code before a change) on the same
stream, /health and cold queries.

    python bench/zipf_load.py --db ./reelsearch.db --duration 10 --out report.md \
        [--before-cmd "env PYTHONPATH=/path/to/other/src python -m reelsearch serve \
                       --host {host} --port {port} --workers {workers}"] [--ports 18300-18399]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np

import peer_typesense
import procs
from catalog import load_movies
from engines import Reelsearch, Typesense
from load import Target, WrkResult, health_paths, run_wrk
from peer_typesense import TypesenseServer
from procs import REELSEARCH_CMD, code_version, reelsearch_server
from queries import generate

ADMIN_TOKEN = "bench-admin-token-for-the-zipf-load-run"  # at least 32 characters
QUIET = {"REELSEARCH_METRICS_ENABLED": "false", "REELSEARCH_ACCESS_LOG": "false"}


def use_ports(spec: str) -> None:
    """Servers of this run listen on ports of ``spec`` ("18300-18399") only."""
    first, last = (int(part) for part in spec.split("-"))
    taken: set[int] = set()

    def free_port(host: str = "127.0.0.1") -> int:
        import socket

        for port in range(first, last + 1):
            if port in taken:
                continue
            with socket.socket() as probe:
                try:
                    probe.bind((host, port))
                except OSError:
                    continue
            taken.add(port)
            return port
        raise RuntimeError(f"no free port in {spec}")

    procs.free_port = free_port
    peer_typesense.free_port = free_port  # type: ignore[attr-defined]


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


def total_misses(base_url: str) -> int:
    """Misses counted so far by every worker of the server at ``base_url``."""
    return sum(int(s["misses"]) for s in cache_stats(base_url))


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
    p.add_argument("--no-quiet", action="store_true", help="skip the observability-off rows")
    p.add_argument("--no-typesense", action="store_true", help="skip the Typesense rows")
    p.add_argument("--before-cmd", help="another checkout's serve command, measured alongside")
    p.add_argument("--ports", help='listen on these ports only, e.g. "18300-18399"')
    p.add_argument("--out", type=Path)
    p.add_argument("--seed", type=int, default=11)
    args = p.parse_args()
    if args.ports:
        use_ports(args.ports)
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
    with (
        tempfile.TemporaryDirectory(prefix="reelsearch-zipf-") as tmp,
        contextlib.ExitStack() as servers,
    ):
        work = Path(tmp)
        ts: TypesenseServer | None = None
        ts_engine = Typesense("", "")  # its paths only, unless a server is started
        if not args.no_typesense:
            ts = servers.enter_context(TypesenseServer())
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
        health = health_paths(work)
        # Entries stay fresh for the whole run (the default 300 s TTL would expire the
        # warm-up's entries mid-run and measure refreshes, not the steady state).
        common = {
            "REELSEARCH_ADMIN_TOKEN": ADMIN_TOKEN,
            "REELSEARCH_CACHE_WARM_TOP": "0",
            "REELSEARCH_CACHE_TTL": "3600",
        }

        def cached_env(name: str) -> dict[str, str]:
            return {
                **common,
                "REELSEARCH_CACHE": "memory,disk",
                "REELSEARCH_CACHE_DISK_PATH": str(work / f"l3-{name}"),
                "REELSEARCH_CACHE_MEMORY_BYTES": str(args.memory_mib << 20),
            }

        off_env = {**common, "REELSEARCH_CACHE": "off"}
        # name -> (command, environment); "cache" servers get the Zipf stream.
        specs: dict[str, tuple[str, dict[str, str]]] = {
            "cache": (REELSEARCH_CMD, cached_env("cache")),
            "off": (REELSEARCH_CMD, off_env),
        }
        if not args.no_quiet:
            specs["quiet cache"] = (REELSEARCH_CMD, {**cached_env("quiet"), **QUIET})
            specs["quiet off"] = (REELSEARCH_CMD, {**off_env, **QUIET})
        if args.before_cmd:
            specs["before cache"] = (args.before_cmd, cached_env("before"))
            specs["before off"] = (args.before_cmd, off_env)
        url = f"sqlite:///{args.db.resolve()}"
        base: dict[str, str] = {}
        pid: dict[str, int] = {}
        for name, (cmd, env) in specs.items():
            found, _ = servers.enter_context(
                reelsearch_server(
                    name.replace(" ", "-"), url, work, workers=args.workers, cmd=cmd, env=env
                )
            )
            base[name], pid[name] = found, server_pid(found)
        # Rows: label -> (server, paths kind); cold rows get fresh queries per run.
        rows_of: list[tuple[str, str, str]] = [
            ("reelsearch cached (zipf)", "cache", "zipf"),
            ("reelsearch /health", "cache", "health"),
            ("typesense use_cache (zipf)", "typesense", "zipf"),
            ("reelsearch hits only (100 queries)", "cache", "hits"),
            ("cold, cache off", "off", "cold"),
            ("cold, cache on", "cache", "cold"),
        ]
        if ts is None:
            rows_of = [row for row in rows_of if row[1] != "typesense"]
        if not args.no_quiet:
            rows_of += [
                ("quiet: cached (zipf)", "quiet cache", "zipf"),
                ("quiet: /health", "quiet cache", "health"),
                ("quiet: hits only", "quiet cache", "hits"),
                ("quiet: cold, cache off", "quiet off", "cold"),
            ]
        if args.before_cmd:
            rows_of += [
                ("before: cached (zipf)", "before cache", "zipf"),
                ("before: /health", "before cache", "health"),
                ("before: hits only", "before cache", "hits"),
                ("before: cold, cache off", "before off", "cold"),
                ("before: cold, cache on", "before cache", "cold"),
            ]
        cold_rows = sum(1 for _, _, kind in rows_of if kind == "cold")
        slice_size = max(1, len(cold) // (cold_rows * args.runs * len(concurrencies)))
        emit(f"cold slices: {slice_size:,} never-asked queries per cold run")

        def target(label: str, server: str, kind: str) -> Target:
            if server == "typesense":
                assert ts is not None
                return Target(label, ts.base_url, ts_zipf, ts_engine.headers)
            paths = {"zipf": rs_zipf, "health": health, "hits": rs_hits}[kind]
            return Target(label, base[server], paths)

        emit(
            f"## Result cache: Zipf({args.exponent}) stream, {len(hot):,} distinct "
            f"queries, {args.stream:,}-request stream; {args.workers} workers; "
            f"L1 {args.memory_mib} MiB per worker + L3 disk; {args.duration} s per run, "
            f"{args.runs} run(s); cold runs {args.cold_duration} s on never-asked queries"
        )
        emit(
            f"python {' '.join(sys.argv)}  (load average before: "
            f"{Path('/proc/loadavg').read_text().split()[0]}; {code_version()})"
        )
        emit()
        # Warm-up, unrecorded: each distinct search of the stream asked four times (the
        # connections spread them over the workers, and the second sighting in a worker
        # writes the disk level the others read), then the stream itself for --warmup
        # seconds (steady state); a few seconds for the others. A time-based pass alone
        # does not reach every search of the stream in every worker on a loaded machine:
        # their first sightings then counted as the stream's misses.
        asked = list(dict.fromkeys(hot[int(i)][0] for i in stream))
        rs_cover = write(work / "rs_cover.txt", asked * 4)
        warmed: set[tuple[str, str]] = set()
        for label, server, kind in rows_of:
            if kind == "cold" or (server, kind) in warmed:
                continue
            warmed.add((server, kind))
            if kind == "zipf" and server != "typesense":
                # About one pass (mostly misses at first, hits by the end); wrk cycles.
                seconds = max(5, len(asked) * 4 // 3000)
                run_wrk(Target(label, base[server], rs_cover), max(concurrencies), seconds)
            run_wrk(target(label, server, kind), max(concurrencies),
                    args.warmup if kind == "zipf" else 3)  # fmt: skip
        rows: dict[tuple[str, int], list[tuple[WrkResult, float | None]]] = {}
        # Misses of the cached server's measured Zipf runs (all workers): what keeps the
        # stream from /health besides the hits' own cost (cold rows add their own misses).
        stream_misses = stream_requests = 0
        next_slice = 0
        for _run in range(args.runs):
            for c in concurrencies:
                for label, server, kind in rows_of:
                    if kind == "cold":
                        paths = write(
                            work / f"cold_{next_slice}.txt",
                            [cp[0] for cp in cold[next_slice * slice_size :][:slice_size]],
                        )
                        next_slice += 1
                        row_target = Target(label, base[server], paths)
                        seconds = args.cold_duration
                    else:
                        row_target, seconds = target(label, server, kind), args.duration
                    counted = server == "cache" and kind == "zipf"
                    before = total_misses(base[server]) if counted else 0
                    result = measured(row_target, c, seconds, pid.get(server))
                    rows.setdefault((label, c), []).append(result)
                    if counted:
                        stream_misses += total_misses(base[server]) - before
                        stream_requests += result[0].requests
        stats = cache_stats(base["cache"])
    emit("| target | c | req/s | p50 ms | p99 ms | errors | server CPU us/request | steal (max) |")
    emit("| --- | --- | --- | --- | --- | --- | --- | --- |")
    summary: dict[tuple[str, int], tuple[float, float]] = {}
    for (name, c), results in rows.items():
        rps = statistics.median(r.rps for r, _ in results)
        p50 = statistics.median(r.p50_us for r, _ in results) / 1000
        p99 = statistics.median(r.p99_us for r, _ in results) / 1000
        cpus = [cpu for _, cpu in results if cpu is not None]
        cpu = f"{statistics.median(cpus):.0f}" if cpus else "-"
        errors = sum(r.errors for r, _ in results)
        steal = max(r.steal for r, _ in results)  # load.WrkResult.steal: the hypervisor's
        summary[(name, c)] = (rps, p99)
        emit(f"| {name} | {c} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {errors} | {cpu} "
             f"| {100 * steal:.0f}% |")  # fmt: skip
    emit()

    emit("| ratio (same run) | " + " | ".join(f"c={c}" for c in concurrencies) + " |")
    emit("| --- |" + " --- |" * len(concurrencies))
    for label, a, b, i in RATIOS:
        if all((a, c) in summary and (b, c) in summary for c in concurrencies):
            emit(
                f"| {label} | "
                + " | ".join(
                    f"{summary[(a, c)][i] / summary[(b, c)][i]:.2f}x" for c in concurrencies
                )
                + " |"
            )
    emit()
    if stream_requests:
        emit(
            f"Misses during the measured cached Zipf runs: {stream_misses:,} of "
            f"{stream_requests:,} requests ({stream_misses / stream_requests:.3%})."
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


CACHED, TS, HEALTH = "reelsearch cached (zipf)", "typesense use_cache (zipf)", "reelsearch /health"
HITS = "reelsearch hits only (100 queries)"
# (label, numerator row, denominator row, 0: req/s or 1: p99)
RATIOS = [
    ("cached / Typesense use_cache, req/s", CACHED, TS, 0),
    ("cached / Typesense use_cache, p99", CACHED, TS, 1),
    ("cached / /health, req/s", CACHED, HEALTH, 0),
    ("hits only / /health, req/s", HITS, HEALTH, 0),
    ("cold cache on / cold cache off, req/s", "cold, cache on", "cold, cache off", 0),
    ("observability on / off: cached (zipf), req/s", CACHED, "quiet: cached (zipf)", 0),
    ("observability on / off: hits only, req/s", HITS, "quiet: hits only", 0),
    ("observability on / off: /health, req/s", HEALTH, "quiet: /health", 0),
    ("observability on / off: cold, req/s", "cold, cache off", "quiet: cold, cache off", 0),
    ("now / before: cached (zipf), req/s", CACHED, "before: cached (zipf)", 0),
    ("now / before: hits only, req/s", HITS, "before: hits only", 0),
    ("now / before: /health, req/s", HEALTH, "before: /health", 0),
    ("now / before: cold, cache off, req/s", "cold, cache off", "before: cold, cache off", 0),
    (
        "before: cold cache on / cold cache off, req/s",
        "before: cold, cache on",
        "before: cold, cache off",
        0,
    ),
    ("before: cached / /health, req/s", "before: cached (zipf)", "before: /health", 0),
]


if __name__ == "__main__":
    main()
