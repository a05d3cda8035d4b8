"""Result-cache hit rate second by second across an import, with warming on and off
(issue 12 part 6; docs/decisions/0011-result-cache.md "Invalidation", 0015).

A Zipf(``--exponent``) stream of known-item searches (bench/queries.py, the pool
bench/zipf_load.py replays) runs at a moderate paced rate against one server worker
(memory + disk levels). After ``--warmup`` seconds (the search log fills and is flushed)
the recording starts; ``--import-at`` seconds later the sample is imported again into the
served catalog: a new catalog version, so every key changes. The hit rate per second is
read from the worker's own counters (``/v1/admin/cache``: hits / (hits + misses + stale)).
With warming on, the worker recomputes the ``--warm-top`` most asked searches right after
it re-keys (at ``REELSEARCH_CACHE_WARM_CPU_SHARE`` of a core); off, only requests refill
the cache. Both runs use their own copy of the catalog, one after the other.

    python bench/hit_rate_import.py --db ./sample.db --out /tmp/hit_rate.md
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from catalog import load_movies
from engines import Reelsearch
from invalidation_precision import is_valid
from procs import ServerProcess
from queries import generate
from zipf_load import zipf_paths

ADMIN_TOKEN = "hit-rate-bench-admin-token-0123456789"
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Timeline:
    """Per-second samples of one run."""

    hit_rate: list[float | None] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)  # non-200 answers (503 deadline)
    lookups: list[int] = field(default_factory=list)
    p50_ms: list[float | None] = field(default_factory=list)
    import_started: float = 0.0
    import_ended: float = 0.0
    rekeyed: float | None = None
    warmed: int = 0


async def counters(client: httpx.AsyncClient, base: str) -> dict[str, object]:
    response = await client.get(f"{base}/v1/admin/cache", headers=ADMIN)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def served(stats: dict[str, object]) -> tuple[int, int]:
    """(hits, lookups) so far: lookups are hits + misses + stale serves."""
    hits = sum(int(n) for n in stats["hits"].values())  # type: ignore[attr-defined]
    lookups = hits + int(stats["misses"]) + int(stats["stale_served"])  # type: ignore[call-overload]
    return hits, lookups


async def stream(
    base: str, paths: list[str], rate: float, concurrency: int, seconds: float,
    latencies: list[tuple[float, float]], start_at: int = 0, errors: list[float] | None = None,
) -> int:  # fmt: skip
    """Send ``paths`` in order at ``rate`` per second for ``seconds``; the next index."""
    next_index = start_at
    errors = [] if errors is None else errors
    began = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=10, limits=limits) as client:

        async def worker() -> None:
            nonlocal next_index
            while True:
                index = next_index
                next_index += 1
                due = began + (index - start_at) / rate
                if due - began >= seconds:
                    return
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                sent = time.perf_counter()
                response = await client.get(paths[index % len(paths)])
                if response.status_code != 200:  # 503s while the import loads the disk
                    errors.append(sent)
                    continue
                latencies.append((sent, time.perf_counter() - sent))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return next_index


async def run_one(args: argparse.Namespace, paths: list[str], warm: bool, work: Path) -> Timeline:
    folder = work / ("warm" if warm else "cold")
    folder.mkdir()
    db = folder / args.db.name
    shutil.copy(args.db, db)
    for words in args.db.parent.glob(args.db.name + ".words-*"):
        shutil.copy(words, folder / words.name)
    url = f"sqlite:///{db}"
    port = args.port + int(warm)
    env = {
        **os.environ,
        "REELSEARCH_DATABASE_URL": url,
        "REELSEARCH_ADMIN_TOKEN": ADMIN_TOKEN,
        "REELSEARCH_CACHE": "memory,disk",
        "REELSEARCH_CACHE_DISK_PATH": str(folder / "l3"),
        "REELSEARCH_CACHE_MEMORY_BYTES": str(args.memory_mib << 20),
        "REELSEARCH_CACHE_TTL": "3600",
        "REELSEARCH_CACHE_WARM_TOP": str(args.warm_top if warm else 0),
    }
    argv = ["reelsearch", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    base = f"http://127.0.0.1:{port}"
    timeline = Timeline()
    with ServerProcess("warm" if warm else "cold", argv, folder / "server.log", env) as server:
        server.wait_healthy(f"{base}/ready", 60)
        latencies: list[tuple[float, float]] = []
        index = await stream(base, paths, args.rate, args.concurrency, args.warmup, latencies)
        latencies.clear()
        errors: list[float] = []
        async with httpx.AsyncClient(timeout=10) as admin:
            before = served(await counters(admin, base))
            version = (await counters(admin, base))["catalog_version"]
            began = time.perf_counter()
            load = asyncio.ensure_future(
                stream(
                    base,
                    paths,
                    args.rate,
                    args.concurrency,
                    args.duration,
                    latencies,
                    index,
                    errors,
                )  # fmt: skip
            )
            importer: subprocess.Popen[bytes] | None = None
            for second in range(1, int(args.duration) + 1):
                await asyncio.sleep(max(0.0, began + second - time.perf_counter()))
                if second == args.import_at:
                    timeline.import_started = time.perf_counter() - began
                    importer = subprocess.Popen(
                        ["reelsearch", "--quiet", "--database-url", url, "import", "sample"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=env,
                    )  # fmt: skip
                if (
                    importer is not None
                    and importer.poll() is not None
                    and not timeline.import_ended
                ):
                    assert importer.returncode == 0, "the import failed"
                    timeline.import_ended = time.perf_counter() - began
                stats = await counters(admin, base)
                now = served(stats)
                hits, lookups = now[0] - before[0], now[1] - before[1]
                before = now
                timeline.hit_rate.append(hits / lookups if lookups else None)
                timeline.lookups.append(lookups)
                window = [d for t, d in latencies if second - 1 <= t - began < second]
                timeline.requests.append(len(window))
                timeline.errors.append(sum(second - 1 <= t - began < second for t in errors))
                timeline.p50_ms.append(statistics.median(window) * 1000 if window else None)
                if timeline.rekeyed is None and stats["catalog_version"] != version:
                    timeline.rekeyed = time.perf_counter() - began
                timeline.warmed = int(stats["warmed"])  # type: ignore[call-overload]
            await load
            await asyncio.sleep(args.settle)  # warming reports its count when it ends
            timeline.warmed = int((await counters(admin, base))["warmed"])  # type: ignore[call-overload]
    return timeline


def report(args: argparse.Namespace, runs: dict[str, Timeline]) -> str:
    lines = [
        f"Zipf({args.exponent}) over {args.distinct:,} searches at {args.rate:g} req/s "
        f"(concurrency {args.concurrency}), 1 worker, memory {args.memory_mib} MiB + disk; "
        f"import of the sample at t={args.import_at} s; warming top {args.warm_top}. "
        f"Load average at start: {os.getloadavg()[0]:.1f}.",
        "",
    ]
    for name, run in runs.items():
        lines.append(
            f"- {name}: import ran t={run.import_started:.0f}-{run.import_ended:.1f} s, "
            f"re-keyed by t={run.rekeyed or 0:.1f} s, {run.warmed} searches warmed, "
            f"{sum(run.errors)} non-200 answers"
        )
    lines += ["", "| t (s) | " + " | ".join(f"hit rate, {n}" for n in runs) + " | "
              + " | ".join(f"p50 ms, {n}" for n in runs) + " |"]  # fmt: skip
    lines.append("| ---: " * (1 + 2 * len(runs)) + "|")

    def pct(value: float | None) -> str:
        return "" if value is None else f"{value:.1%}"

    def ms(value: float | None) -> str:
        return "" if value is None else f"{value:.1f}"

    for second in range(int(args.duration)):
        marks = " (import)" if second + 1 == args.import_at else ""
        cells = [pct(run.hit_rate[second]) for run in runs.values()]
        cells += [ms(run.p50_ms[second]) for run in runs.values()]
        lines.append(f"| {second + 1}{marks} | " + " | ".join(cells) + " |")
    lines += ["", "| hit rate (lookups) | " + " | ".join(runs) + " |",
              "| --- " + "| ---: " * len(runs) + "|"]  # fmt: skip
    windows = [("before the import", None, -1), ("import running, old keys", -1, 0),
               ("0-5 s after re-keying", 0, 5), ("5-15 s after", 5, 15),
               ("15 s after, to the end", 15, None)]  # fmt: skip
    for label, start, end in windows:
        cells = []
        for run in runs.values():
            rekey = run.rekeyed if run.rekeyed is not None else float(args.duration)
            low = args.import_at - 1 if start == -1 else (rekey + start if start is not None else 0)
            high = (args.import_at - 1 if end == -1 else rekey + end if end is not None
                    else args.duration)  # fmt: skip
            if start == -1:
                low, high = args.import_at - 1, rekey
            picked = [(run.hit_rate[i], run.lookups[i]) for i in range(len(run.hit_rate))
                      if low <= i < high and run.hit_rate[i] is not None]  # fmt: skip
            asked = sum(n for _, n in picked)
            hits = sum(r * n for r, n in picked if r is not None)
            cells.append(f"{hits / asked:.1%} ({asked:,})" if asked else "")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    for name, run in runs.items():
        steady = [r for r in run.hit_rate[: args.import_at - 1] if r is not None]
        after = run.hit_rate[args.import_at :]
        level = statistics.mean(steady) if steady else 0.0
        low = min((r for r in after if r is not None), default=0.0)
        back = next(
            (i + args.import_at + 1 for i, r in enumerate(after)
             if r is not None and r >= 0.9 * level and i + args.import_at >= (run.rekeyed or 0)),
            None,
        )  # fmt: skip
        lines.append(
            f"- {name}: {level:.1%} before the import, lowest {low:.1%} after it, back to 90% "
            f"of before at t={back if back is not None else 'never'} s"
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> None:
    movies = load_movies(args.db)
    queries = generate(movies, per_kind=args.distinct // 5 + 1, seed=args.seed, min_votes=0)
    random.Random(args.seed).shuffle(queries)
    engine = Reelsearch("")
    distinct = list(dict.fromkeys(engine.search_path(q.q, q.filters) for q in queries))
    distinct = [path for path in distinct if is_valid(path)][: args.distinct]
    order = zipf_paths([str(i) for i in range(len(distinct))], args.stream, args.exponent,
                       args.seed)  # fmt: skip
    paths = [distinct[int(i)] for i in order]
    runs: dict[str, Timeline] = {}
    with tempfile.TemporaryDirectory(prefix="rs-hit-rate-") as tmp:
        for warm in (True, False):
            runs["warming on" if warm else "warming off"] = await run_one(
                args, paths, warm, Path(tmp)
            )
    text = report(args, runs)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("--distinct", type=int, default=20_000)
    p.add_argument("--stream", type=int, default=200_000)
    p.add_argument("--exponent", type=float, default=1.1)
    p.add_argument("--rate", type=float, default=200.0, help="requests per second")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--warmup", type=float, default=20.0, help="seconds before recording")
    p.add_argument("--duration", type=float, default=50.0, help="seconds recorded")
    p.add_argument("--import-at", type=int, default=15, help="second of the recording")
    p.add_argument("--warm-top", type=int, default=500)
    p.add_argument("--memory-mib", type=int, default=64)
    p.add_argument("--port", type=int, default=18210, help="this and the next one")
    p.add_argument("--settle", type=float, default=5.0, help="seconds before the last read")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--out", type=Path)
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()
