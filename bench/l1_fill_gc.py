"""Garbage-collector pauses while L1 fills: never-asked searches against a 2-worker server.

Every held answer a worker keeps is a survivor the collector may walk in each full
(generation 2) collection, so a server whose L1 fills pays pauses that grow with it
(bench/RESULTS.md, "Noticed at the end: full collections while L1 fills"). This
bench starts a server with the embedded default levels (memory + disk), sends it
``--runs`` wrk runs of never-asked searches (each run a disjoint slice of the pool,
so every request is a miss and L1 grows from run to run), then reads the
collector's figures from ``/metrics`` (pause seconds and collections per
generation, summed over the workers) and the workers' L1 from the admin stats.
``--before-src`` runs the same on another checkout's code (``PYTHONPATH``), the two
servers alternating round by round; ``--off`` adds a server with the cache off.

    python bench/l1_fill_gc.py --db ./reelsearch.db --ports 18100-18199 \
        [--before-src /tmp/main/src] [--rounds 2 --runs 4 --seconds 8 --concurrency 16]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from catalog import load_movies
from engines import Reelsearch
from load import Target, run_wrk
from procs import REELSEARCH_CMD, reelsearch_server
from queries import generate
from zipf_load import ADMIN_TOKEN, cache_stats, server_pid, tree_cpu_seconds, use_ports, write

# One sample of the workers' metrics per second (the default): wait for the last one.
METRICS_SETTLE_SECONDS = 2.5
_GC_LINE = re.compile(r"^reelsearch_gc_(pause_seconds|collections)_total(\{[^}]*\})? (\S+)$")


def gc_figures(base_url: str) -> tuple[float, dict[str, float]]:
    """Seconds of collector pauses and collections per generation, all workers together."""
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    pause, runs = 0.0, {"0": 0.0, "1": 0.0, "2": 0.0}
    for line in text.splitlines():
        found = _GC_LINE.match(line)
        if found is None:
            continue
        kind, labels, value = found.groups()
        if kind == "pause_seconds":
            pause += float(value)
        else:
            generation = re.search(r'generation="(\d)"', labels or "")
            if generation:
                runs[generation.group(1)] += float(value)
    return pause, runs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("--ports", help='listen on these ports only, e.g. "18300-18399"')
    p.add_argument("--before-src", help="another checkout's src/, run alongside")
    p.add_argument("--off", action="store_true", help="also a server with the cache off")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--runs", type=int, default=4, help="wrk runs per server (L1 grows)")
    p.add_argument("--seconds", type=int, default=8)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--slice", type=int, default=30_000, help="never-asked searches per run")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=23)
    args = p.parse_args()
    if args.ports:
        use_ports(args.ports)
    movies = load_movies(args.db)
    servers = ["after", *(["before"] if args.before_src else []), *(["off"] if args.off else [])]
    needed = args.slice * args.runs * args.rounds * len(servers)
    queries = generate(movies, per_kind=needed // 4 + 1, seed=args.seed, min_votes=0)
    random.Random(args.seed).shuffle(queries)
    rs = Reelsearch("")
    pool = list(dict.fromkeys(rs.search_path(q.q, q.filters) for q in queries))
    if len(pool) < needed:
        raise SystemExit(f"only {len(pool):,} distinct searches for {needed:,}: lower --slice")
    url = f"sqlite:///{args.db.resolve()}"
    print(f"load {os.getloadavg()[0]:.1f}; {len(pool):,} distinct searches, {args.slice:,} per run")
    print("| round | server | run | req/s | p50 ms | p99 ms | CPU µs/req |")
    print("| --- | --- | --: | --: | --: | --: | --: |")
    totals: dict[str, list[tuple[float, dict[str, float], int, float]]] = {s: [] for s in servers}
    offset = 0
    with tempfile.TemporaryDirectory(prefix="l1-fill-gc-") as tmp:
        work = Path(tmp)
        for round_ in range(args.rounds):
            order = servers if round_ % 2 == 0 else servers[::-1]
            for name in order:
                env = {
                    "REELSEARCH_ADMIN_TOKEN": ADMIN_TOKEN,
                    "REELSEARCH_CACHE_WARM_TOP": "0",
                    "REELSEARCH_CACHE_TTL": "3600",
                    "REELSEARCH_CACHE": "off" if name == "off" else "memory,disk",
                    "REELSEARCH_CACHE_DISK_PATH": str(work / f"l3-{name}-{round_}"),
                }
                if name == "before":
                    env["PYTHONPATH"] = args.before_src
                with reelsearch_server(
                    f"{name}-{round_}", url, work, workers=args.workers, cmd=REELSEARCH_CMD,
                    env=env,
                ) as (base_url, _):  # fmt: skip
                    pid = server_pid(base_url)
                    started_cpu = tree_cpu_seconds(pid)
                    requests = 0
                    for run in range(args.runs):
                        paths = write(work / "slice.txt", pool[offset : offset + args.slice])
                        offset += args.slice
                        before = tree_cpu_seconds(pid)
                        result = run_wrk(Target(name, base_url, paths), args.concurrency,
                                         args.seconds)  # fmt: skip
                        cpu = (tree_cpu_seconds(pid) - before) / max(1, result.requests) * 1e6
                        requests += result.requests
                        if result.requests > args.slice:  # wrk began the slice again: hits
                            print(f"(run {run + 1} outran its slice: raise --slice)")
                        print(f"| {round_ + 1} | {name} | {run + 1} | {result.rps:,.0f} | "
                              f"{result.p50_us / 1000:.2f} | {result.p99_us / 1000:.2f} | "
                              f"{cpu:.0f} |", flush=True)  # fmt: skip
                    time.sleep(METRICS_SETTLE_SECONDS)
                    pause, runs = gc_figures(base_url)
                    entries = 0
                    if name != "off":
                        entries = sum(
                            next(lv["entries"] for lv in s["levels"] if lv["name"] == "memory")
                            for s in cache_stats(base_url)
                        )
                    cpu_all = tree_cpu_seconds(pid) - started_cpu
                    totals[name].append((pause, runs, entries, cpu_all / max(1, requests) * 1e6))
    print()
    print("| server | round | GC pause s | collections gen 0 / 1 / 2 | all pauses ÷ full, ms "
          "| L1 entries (both workers) |")  # fmt: skip
    print("| --- | --: | --: | --: | --: | --: |")
    for name, rows in totals.items():
        for round_, (pause, runs, entries, _) in enumerate(rows):
            full = runs["2"]
            per_full = f"{pause / full * 1000:.0f}" if full else "-"
            print(f"| {name} | {round_ + 1} | {pause:.2f} | {runs['0']:.0f} / {runs['1']:.0f} / "
                  f"{full:.0f} | {per_full} | {entries:,} |")  # fmt: skip
        pauses = [pause for pause, *_ in rows]
        print(f"| {name} | median | {statistics.median(pauses):.2f} | | | |")
    print(f"\nload {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
