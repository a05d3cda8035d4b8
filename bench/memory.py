"""Memory of a whole reelsearch server (PSS, all worker processes) and a worker's start time.

Why: with N worker processes, what the host really spends is the proportional set size
(PSS: each shared page counted once, split among the processes that map it), summed over
the server's processes, not N times one worker's RSS. And a worker that rebuilds its
indexes at start is slow to start and holds them privately.

For each --workers N: start `python -m reelsearch serve --workers N` on the catalog, wait
until its memory stops growing (every worker has loaded its snapshot), send a short
warm-up of searches, then read /proc/PID/smaps_rollup of every process in its group.
Typesense 0.24.1 (--typesense) is loaded with the same catalog and measured the same way.
The worker start time is the median of three `CatalogSnapshot.load` calls in fresh
processes (what each worker does before it serves).

    python bench/memory.py --db /tmp/sample.db --workers 1 2 4 --typesense
    python bench/memory.py --db /tmp/sample.db --src /tmp/ts-before/src   # an older tree
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from procs import ServerProcess, free_port

HOST = "127.0.0.1"
_LOAD_SNAPSHOT = (
    "import sqlite3, sys, time\n"
    "from reelsearch.search.snapshot import CatalogSnapshot\n"
    "c = sqlite3.connect(sys.argv[1]); c.execute('BEGIN')\n"
    "t = time.perf_counter()\n"
    "s = CatalogSnapshot.load(c)\n"
    "print(time.perf_counter() - t, s.typos.candidates('godfater'))\n"
)


def group_memory(leader: int) -> tuple[int, int, int]:
    """(processes, PSS KiB, RSS KiB) summed over the process group of ``leader``."""
    count = pss = rss = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            pgrp = int(stat.rpartition(")")[2].split()[2])
            if pgrp != leader:
                continue
            rollup = (entry / "smaps_rollup").read_text()
        except (OSError, ValueError, IndexError):
            continue
        count += 1
        for line in rollup.splitlines():
            name, _, value = line.partition(":")
            if name == "Pss":
                pss += int(value.split()[0])
            elif name == "Rss":
                rss += int(value.split()[0])
    return count, pss, rss


def wait_settled(leader: int, processes: int, timeout_s: float = 180.0) -> None:
    """Until the group has ``processes`` processes and its RSS held still for 2 s."""
    deadline = time.monotonic() + timeout_s
    last, still_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count, _, rss = group_memory(leader)
        if count < processes or abs(rss - last) > max(last // 100, 1024):
            last, still_since = rss, time.monotonic()
        elif time.monotonic() - still_since >= 2.0:
            return
        time.sleep(0.25)
    raise TimeoutError(f"server group {leader} did not settle in {timeout_s:.0f} s")


def warm_up_queries(db: Path, count: int = 300, seed: int = 1) -> list[str]:
    """Catalog title words, some misspelt: each search touches the vocabulary and typo index."""
    with sqlite3.connect(db) as conn:
        titles = [row[0] for row in conn.execute("SELECT title FROM movies LIMIT 5000")]
    conn.close()
    rng = random.Random(seed)
    queries = []
    for _ in range(count):
        words = rng.choice(titles).split()[:3]
        if words and rng.random() < 0.5 and len(words[0]) > 5:
            i = rng.randrange(len(words[0]))
            words[0] = words[0][:i] + words[0][i + 1 :]
        queries.append(" ".join(words))
    return queries


def serve_memory(db: Path, workers: int, src: Path | None, queries: list[str]) -> dict[str, float]:
    port = free_port(HOST)
    env = {**os.environ, "REELSEARCH_DATABASE_URL": f"sqlite:///{db}"}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    argv = [sys.executable, "-m", "reelsearch", "serve", "--port", str(port)]
    argv += ["--workers", str(workers)]
    log = Path(f"/tmp/reelsearch-memory-{port}.log")
    server = ServerProcess("reelsearch", argv, log, env=env)
    started = time.perf_counter()
    server.start()
    try:
        server.wait_healthy(f"http://{HOST}:{port}/health", 180.0)
        assert server.pid is not None
        wait_settled(server.pid, workers + 1)
        ready_s = time.perf_counter() - started
        with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=30.0) as client:
            for query in queries:
                client.get("/v1/search", params={"q": query}).raise_for_status()
        wait_settled(server.pid, workers + 1)
        count, pss, rss = group_memory(server.pid)
    finally:
        server.stop()
        log.unlink(missing_ok=True)
    return {"processes": count, "pss_mib": pss / 1024, "rss_mib": rss / 1024, "ready_s": ready_s}


def typesense_memory(db: Path) -> dict[str, float]:
    from catalog import load_movies
    from peer_typesense import TypesenseServer

    with TypesenseServer() as server:
        server.load(load_movies(db))
        assert server._proc is not None and server._proc.pid is not None
        leader = server._proc.pid
        wait_settled(leader, 1)
        count, pss, rss = group_memory(leader)
    return {"processes": count, "pss_mib": pss / 1024, "rss_mib": rss / 1024}


def snapshot_load_seconds(db: Path, src: Path | None, runs: int = 3) -> float:
    env = {**os.environ}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _LOAD_SNAPSHOT, str(db)],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        times.append(float(out.stdout.split()[0]))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="a SQLite catalog")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--src", type=Path, help="run reelsearch from this src/ (e.g. older)")
    parser.add_argument("--typesense", action="store_true", help="measure Typesense too")
    parser.add_argument("--no-start", action="store_true", help="skip the start-time runs")
    args = parser.parse_args()
    label = str(args.src or "this tree")
    if not args.no_start:
        seconds = snapshot_load_seconds(args.db, args.src)
        print(f"{label}: worker start (snapshot load, median of 3): {seconds:.2f} s")
    queries = warm_up_queries(args.db)
    print("| server | processes | PSS MiB | RSS MiB | settled after s |")
    print("| --- | --- | --- | --- | --- |")
    for workers in args.workers:
        m = serve_memory(args.db, workers, args.src, queries)
        print(
            f"| reelsearch {workers} worker(s), {label} | {m['processes']:.0f} | "
            f"{m['pss_mib']:.0f} | {m['rss_mib']:.0f} | {m['ready_s']:.1f} |",
            flush=True,
        )
    if args.typesense:
        m = typesense_memory(args.db)
        print(f"| Typesense 0.24.1 | {m['processes']:.0f} | {m['pss_mib']:.0f} | "
              f"{m['rss_mib']:.0f} | |")  # fmt: skip


if __name__ == "__main__":
    main()
