"""CPU per L1 hit through the whole app (in process, no server) on a wide and a narrow stream.

The Zipf stream of bench/zipf_load.py (same queries, seed and exponent), its 100 most
popular searches cycled, all its distinct searches in turn (no locality), and /health:
after every distinct search is stored (three passes), each row sends ``-n`` requests
through the ASGI app, fresh scope dicts each, and reports process CPU time per request.
What a wide working set costs the app's own work per hit, without the server, the
kernel or the load generator.

    python bench/zipf_hit_spread.py --db ./reelsearch.db [--rounds 2 -n 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from catalog import load_movies
from engines import Reelsearch
from queries import generate
from reelsearch.config import Settings
from reelsearch.http.app import create_app
from zipf_load import zipf_paths


def _scope(target: str) -> dict[str, Any]:
    path, _, query = target.partition("?")
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
        "root_path": "", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1),
        "headers": [(b"host", b"127.0.0.1"), (b"user-agent", b"wrk")],
    }  # fmt: skip


async def run(db: Path, distinct: int, rounds: int, n: int) -> None:
    movies = load_movies(db)
    queries = generate(movies, per_kind=distinct // 5 + 1, seed=11, min_votes=0)
    random.Random(11).shuffle(queries)
    rs = Reelsearch("")
    hot = list(dict.fromkeys(rs.search_path(q.q, q.filters) for q in queries))[:distinct]
    stream = [hot[int(i)] for i in zipf_paths([str(i) for i in range(len(hot))], n, 1.1, 11)]
    asked = list(dict.fromkeys(stream))
    rows = {
        "Zipf stream": stream,
        "100 most popular, cycled": [hot[i % 100] for i in range(n)],
        f"all {len(asked):,} asked, in turn": [asked[i % len(asked)] for i in range(n)],
        "/health": ["/health"] * n,
    }
    with tempfile.TemporaryDirectory(prefix="hit-spread-") as disk:
        settings = Settings(
            database_url=f"sqlite:///{db.resolve()}", cache="memory,disk", cache_warm_top=0,
            cache_ttl=3600, cache_disk_path=disk, cache_memory_bytes=64 << 20,
            access_log=False,
        )  # fmt: skip
        app = create_app(settings)
        async with app.router.lifespan_context(app):

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": b""}

            async def send(message: dict[str, Any]) -> None:
                pass

            for _ in range(3):  # computed, then the alias map filled, then hits
                for target in asked:
                    await app(_scope(target), receive, send)
            counters = app.state.cache_counters
            misses = counters.misses
            print("| row | " + " | ".join(f"round {r + 1}" for r in range(rounds)) + " |")
            print("| --- |" + " ---: |" * rounds)
            for name, targets in rows.items():
                took = []
                for _ in range(rounds):
                    scopes = [_scope(t) for t in targets]
                    started = time.process_time()
                    for scope in scopes:
                        await app(scope, receive, send)
                    took.append((time.process_time() - started) / len(scopes) * 1e6)
                print(f"| {name} | " + " | ".join(f"{t:.1f} µs" for t in took) + " |")
            print(f"\nmisses while measuring: {counters.misses - misses}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("--distinct", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("-n", type=int, default=100_000)
    args = p.parse_args()
    asyncio.run(run(args.db, args.distinct, args.rounds, args.n))


if __name__ == "__main__":
    main()
