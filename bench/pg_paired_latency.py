"""One search at a time over HTTP, two code versions in the same minutes: per-version latency.

Why: at c=1 a search's time over HTTP moves with the machine's other load more than with
the code, and runs of one version after the other see different loads. This starts one
server per version (``--cmd NAME=COMMAND``, e.g. the code before a change via PYTHONPATH)
on the same catalog (result cache off), sends every bench path to each version in turn,
which one first alternating from search to search, for ``--passes`` passes after one
unrecorded pass, and prints each version's client-side p50 / p90 / p99 and its non-200
answers (503: the deadline). Both versions see the same searches under the same load.

    python bench/pg_paired_latency.py --pg-url postgresql+asyncpg://postgres@127.0.0.1:5432/DB \
        --db catalog.db --cmd "before=env PYTHONPATH=/tmp/before/src reelsearch serve --host \
        {host} --port {port} --workers {workers}" --cmd "after=reelsearch serve --host {host} \
        --port {port} --workers {workers}" --port 18450 [--passes 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

import procs
import queries as query_gen
from catalog import load_movies
from engines import Reelsearch
from queries import add_query_set_args


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pg-url", required=True)
    p.add_argument("--db", type=Path, required=True, help="the SQLite twin (query set)")
    add_query_set_args(p)
    p.add_argument("--cmd", action="append", required=True, help="NAME=COMMAND, twice")
    p.add_argument("--port", type=int, required=True, help="first of the servers' ports")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--passes", type=int, default=3)
    p.add_argument("--startup-timeout", type=float, default=400.0)
    return p.parse_args()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    args = parse_args()
    versions = dict(spec.split("=", 1) for spec in args.cmd)
    qs = query_gen.generate(load_movies(args.db), args.per_kind, args.seed, args.min_votes)
    api = Reelsearch("")
    paths = [api.search_path(q.q, q.filters) for q in qs]
    ports = iter(range(args.port, args.port + len(versions)))
    procs.free_port = lambda host="127.0.0.1": next(ports)  # this helper's own ports
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        clients: dict[str, httpx.Client] = {}
        for name, cmd in versions.items():
            url, _ = stack.enter_context(
                procs.reelsearch_server(
                    name,
                    args.pg_url,
                    Path(tmp),
                    workers=args.workers,
                    cmd=cmd,
                    startup_timeout_s=args.startup_timeout,
                )
            )
            clients[name] = stack.enter_context(httpx.Client(base_url=url, timeout=30))
        for client in clients.values():  # unrecorded: statements prepared, pages cached
            for path in paths:
                client.get(path)
        took: dict[str, list[float]] = {name: [] for name in clients}
        failed = dict.fromkeys(clients, 0)
        names = list(clients)
        loads = [os.getloadavg()[0]]
        for turn in range(args.passes):
            for i, path in enumerate(paths):
                first = (i + turn) % len(names)
                for name in names[first:] + names[:first]:
                    started = time.perf_counter()
                    status = clients[name].get(path).status_code
                    took[name].append((time.perf_counter() - started) * 1000)
                    failed[name] += status != 200
            loads.append(os.getloadavg()[0])
    print(
        f"{len(paths)} searches x {args.passes} passes, versions alternating; load average "
        + " -> ".join(f"{load:.1f}" for load in loads)
    )
    for name, times in took.items():
        print(
            f"{name}: p50 {pct(times, 0.5):.2f} p90 {pct(times, 0.9):.2f} "
            f"p99 {pct(times, 0.99):.2f} max {max(times):.1f} mean {statistics.mean(times):.2f} "
            f"ms; non-200 {failed[name]} of {len(times)}"
        )


if __name__ == "__main__":
    main()
