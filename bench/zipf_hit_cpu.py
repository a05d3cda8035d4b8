"""Server CPU of one L1 hit through the whole app (fast path) against /health, in-process.

No HTTP server, so only the app's own work: what the ASGI server adds is the same for
both. ``--profile`` prints where a hit's time goes.

    python bench/zipf_hit_cpu.py --db ./reelsearch.db [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import time
from pathlib import Path
from typing import Any

from reelsearch.config import Settings
from reelsearch.http.app import create_app


def _scope(path: str, query: bytes, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query,
        "root_path": "", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1),
        "headers": headers,
    }  # fmt: skip


async def measure(db: Path, n: int, profile: bool) -> None:
    settings = Settings(database_url=f"sqlite:///{db}", cache="memory", cache_warm_top=0)
    app = create_app(settings)
    async with app.router.lifespan_context(app):

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(message: dict[str, Any]) -> None:
            pass

        cases = {
            "/health": _scope("/health", b"", []),
            "search hit, identity": _scope("/v1/search", b"q=star+wars&limit=10", []),
            "search hit, gzip": _scope(
                "/v1/search", b"q=star+wars&limit=10", [(b"accept-encoding", b"gzip, br")]
            ),
            "search 304": _scope("/v1/search", b"q=star+wars&limit=10", [(b"if-none-match", b"*")]),
        }
        for scope in cases.values():  # first computes, second fills the alias map
            await app(scope, receive, send)
            await app(scope, receive, send)
        for name, scope in cases.items():
            profiler = cProfile.Profile() if profile and name == "search hit, gzip" else None
            if profiler:
                profiler.enable()
            started = time.process_time()
            for _ in range(n):
                await app(scope, receive, send)
            took = (time.process_time() - started) / n * 1e6
            if profiler:
                profiler.disable()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
            print(f"| {name} | {took:.1f} |")
        counters = app.state.cache_counters
        print(f"fast path answers: {counters.fast_path:,}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("-n", type=int, default=20_000)
    p.add_argument("--profile", action="store_true")
    args = p.parse_args()
    print("| in-process request | CPU us |\n| --- | --- |")
    asyncio.run(measure(args.db, args.n, args.profile))


if __name__ == "__main__":
    main()
