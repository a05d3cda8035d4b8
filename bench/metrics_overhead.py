"""What observability costs a request: with and without metrics (and the access log), one run.

Why: the issue allows metrics 5 % of throughput at most. Three configurations of the
same app on the same catalog:

- ``none``: REELSEARCH_METRICS_ENABLED=false, REELSEARCH_ACCESS_LOG=false;
- ``metrics``: metrics on (the default), access log off;
- ``metrics+log``: both on, JSON access lines (written to /dev/null here).

Two request sets: ``mixed`` cycles through distinct searches, typos, filtered searches
with facets, autocompletes and movie details built from the catalog's most popular
titles (the cold path: nothing repeats within a thousand requests), and ``repeat`` asks
one search again and again (the cached-hit path once the result cache of issue 12 is
in; until then a hot SQLite read, the cheapest request there is).

Part 1 (always): in process, the three apps side by side, batches of requests sent
through each app in turn (rotated per round), CPU time of this process per request
(``time.process_time``): on a shared machine wall-clock throughput mostly measures the
neighbours, CPU time per request much less so. Metrics run in multiprocess mode as
under ``reelsearch serve`` (memory-mapped values in a temporary directory).
Throughput ratio = CPU per request of ``none`` / CPU per request of the configuration.

Part 2 (``--http``): the same three as ``reelsearch serve --workers 2`` under wrk.

    python bench/metrics_overhead.py --db ./reelsearch.db --rounds 15 [--http]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from mdtable import markdown_table

CONFIGS: dict[str, dict[str, Any]] = {
    "none": {"metrics_enabled": False, "access_log": False},
    "metrics": {"metrics_enabled": True, "access_log": False},
    "metrics+log": {"metrics_enabled": True, "access_log": True},
}


def env_of(config: dict[str, Any]) -> dict[str, str]:
    return {f"REELSEARCH_{k.upper()}": str(v).lower() for k, v in config.items()}


async def cpu_per_request(
    apps: dict[str, Any], paths: list[str], rounds: int
) -> dict[str, list[float]]:
    """Microseconds of CPU per request, one figure per round, for each app."""
    from reelsearch.observability.profiling import send_get

    async with contextlib.AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        names = list(apps)
        for name in names:  # warm up: snapshot pages, statement caches, label children
            for path in paths[:200]:
                await send_get(apps[name], path)
        figures: dict[str, list[float]] = {name: [] for name in names}
        for round_ in range(rounds):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                started = time.process_time()
                for path in paths:
                    assert await send_get(apps[name], path) < 500
                figures[name].append((time.process_time() - started) / len(paths) * 1e6)
    return figures


def in_process(url: str, mixed: list[str], rounds: int) -> list[list[str]]:
    from reelsearch.config import Settings
    from reelsearch.http import create_app

    base = Settings(database_url=url, log_format="json", slow_request_ms=0.0)
    rows = []
    for label, paths in (("mixed", mixed), ("repeat", ["/v1/search?q=star+wars"] * 500)):
        apps = {name: create_app(replace(base, **config)) for name, config in CONFIGS.items()}
        figures = asyncio.run(cpu_per_request(apps, paths, rounds))
        for name, runs in figures.items():
            # Paired: each round's ratio to "none" measured beside it, then the median.
            ratios = sorted(none / mine for none, mine in zip(figures["none"], runs, strict=True))
            rows.append([label, name, f"{statistics.median(runs):.1f}",
                         f"{statistics.median(ratios):.3f}",
                         f"{ratios[0]:.3f}-{ratios[-1]:.3f}"])  # fmt: skip
    return rows


async def _noop_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def instrumentation_alone(rounds: int, requests: int = 20_000) -> list[list[str]]:
    """CPU per request of the observing middleware around an app that does nothing."""
    from reelsearch.observability.metrics import Metrics
    from reelsearch.observability.requests import ObservedRequests
    from reelsearch.observability.slowlog import SlowRequestLog

    def wrapped(metrics: Metrics | None, access_log: bool) -> Any:
        return ObservedRequests(_noop_app, metrics=metrics, slow_log=SlowRequestLog(0.0),
                                access_log=access_log, static_routes={})  # fmt: skip

    apps = {"bare app": _noop_app, "none": wrapped(None, False),
            "metrics": wrapped(Metrics.from_environment(), False),
            "metrics+log": wrapped(Metrics.from_environment(), True)}  # fmt: skip
    scope = {"type": "http", "method": "GET", "path": "/v1/search", "query_string": b"q=a",
             "headers": [(b"host", b"x")]}  # fmt: skip

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        return None

    async def measure_all() -> dict[str, list[float]]:
        figures: dict[str, list[float]] = {name: [] for name in apps}
        for _ in range(rounds):
            for name, app in apps.items():
                started = time.process_time()
                for _ in range(requests):
                    await app(dict(scope), receive, send)
                figures[name].append((time.process_time() - started) / requests * 1e6)
        return figures

    figures = asyncio.run(measure_all())
    bare = statistics.median(figures["bare app"])
    return [[name, f"{statistics.median(runs):.2f}", f"{statistics.median(runs) - bare:.2f}"]
            for name, runs in figures.items()]  # fmt: skip


def over_http(
    url: str, mixed_file: Path, workdir: Path, args: argparse.Namespace
) -> list[list[str]]:
    from load import Target, measure
    from procs import reelsearch_server

    repeat_file = workdir / "repeat.txt"
    repeat_file.write_text("/v1/search?q=star+wars\n")
    with contextlib.ExitStack() as servers:
        bases = {
            name: servers.enter_context(
                reelsearch_server(name, url, workdir,
                                  env={**env_of(config), "REELSEARCH_LOG_FORMAT": "json"})
            )[0]
            for name, config in CONFIGS.items()
        }  # fmt: skip
        targets = [
            Target(f"{name} {paths.stem}", base, paths)
            for paths in (mixed_file, repeat_file)
            for name, base in bases.items()
        ]
        results = measure(targets, [args.connections], args.duration, args.runs)
    rows = []
    for paths in (mixed_file, repeat_file):
        c = args.connections
        base_rps = statistics.median(r.rps for r in results[(f"none {paths.stem}", c)])
        for name in CONFIGS:
            runs = results[(f"{name} {paths.stem}", c)]
            rps = statistics.median(r.rps for r in runs)
            rows.append([paths.stem, name, f"{rps:,.0f}", f"{rps / base_rps:.3f}",
                         " / ".join(f"{r.rps:,.0f}" for r in runs)])  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="a SQLite catalog")
    parser.add_argument("--rounds", type=int, default=15, help="in-process rounds")
    parser.add_argument("--http", action="store_true", help="also measure over HTTP with wrk")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--runs", type=int, default=3, help="wrk runs")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    url = f"sqlite:///{args.db.resolve()}"
    workdir = Path(tempfile.mkdtemp(prefix="metrics-overhead-"))
    # Multiprocess metrics as under `reelsearch serve`: set before prometheus-client loads.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(workdir)
    from procs import code_version
    from reelsearch.config import Settings
    from reelsearch.observability.profiling import builtin_workload

    mixed = builtin_workload(Settings(database_url=url))
    mixed_file = workdir / "mixed.txt"
    mixed_file.write_text("".join(p + "\n" for p in mixed))
    print(f"{code_version()}; {len(mixed)} mixed paths", flush=True)
    with open(os.devnull, "w") as nowhere, contextlib.redirect_stderr(nowhere):
        from reelsearch.config import Settings as _Settings
        from reelsearch.observability.logging import configure_logging

        configure_logging(_Settings(log_format="json"))  # JSON lines to /dev/null
        alone = instrumentation_alone(args.rounds)
        rows = in_process(url, mixed, args.rounds)  # the access lines go nowhere
    print(f"\nThe observing middleware around an app that does nothing, CPU per request, "
          f"median of {args.rounds} rounds:\n")  # fmt: skip
    print(markdown_table(["observability", "CPU µs/request", "added µs"], alone))
    print(f"\nIn process, the whole app, CPU per request, median of {args.rounds} rounds "
          "(throughput ratio: median of each round's ratio to none):\n")  # fmt: skip
    print(markdown_table(["requests", "observability", "CPU µs/request", "throughput vs none",
                          "ratio range"], rows))  # fmt: skip
    if args.http:
        rows = over_http(url, mixed_file, workdir, args)
        print(f"\nOver HTTP (2 workers, wrk c={args.connections}, {args.runs} x "
              f"{args.duration} s):\n")  # fmt: skip
        print(markdown_table(["requests", "observability", "req/s (median)", "vs none",
                              "runs"], rows))  # fmt: skip


if __name__ == "__main__":
    main()
