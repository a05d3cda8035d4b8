"""CPU per request of a pool checkout: the shipped PostgresPool vs the first design.

The first design (before docs/decisions/0004 "as built") checked out with
``engine.connect()`` + ``get_raw_connection()``, pre-ping on. The shipped one
uses ``raw_connection()`` behind a FIFO gate, pre-ping off. Both run the same
16 tasks sharing N requests of checkout -> ``SELECT 1`` -> return, on uvloop,
in this process; the figure is ``time.process_time()`` per request (client CPU,
what the pool costs a worker), median of rounds that alternate the variants.

    python bench/pool_checkout_cpu.py --url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import uvloop
from sqlalchemy.ext.asyncio import create_async_engine

from mdtable import markdown_table
from reelsearch.config import Settings
from reelsearch.db.postgres import PostgresPool


class FirstDesign:
    """The checkout PostgresPool started with: an AsyncConnection per request."""

    def __init__(self, settings: Settings) -> None:
        self.engine = create_async_engine(
            settings.asyncpg_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_pre_ping=settings.db_pool_pre_ping,
            pool_use_lifo=settings.db_pool_lifo,
        )

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            yield raw.driver_connection

    async def close(self) -> None:
        await self.engine.dispose()


async def cpu_per_request(pool: Any, requests: int, tasks: int) -> float:
    """Microseconds of this process's CPU per checkout + SELECT 1 + return."""
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            async with pool.connection() as conn:
                await conn.fetchval("SELECT 1")

    await asyncio.gather(*[worker() for _ in range(tasks)])  # warm-up: opens the pool
    left = requests
    started = time.process_time()
    await asyncio.gather(*[worker() for _ in range(tasks)])
    return (time.process_time() - started) / requests * 1e6


async def main_async(args: argparse.Namespace) -> None:
    base = Settings(database_url=args.url, db_pool_size=8, db_max_overflow=4)
    variants: dict[str, Callable[[], Any]] = {
        "first design: engine.connect(), pre-ping on": lambda: FirstDesign(
            replace(base, db_pool_pre_ping=True)
        ),
        "first design: engine.connect(), pre-ping off": lambda: FirstDesign(
            replace(base, db_pool_pre_ping=False)
        ),
        "shipped: raw_connection() + gate, pre-ping off (default)": lambda: PostgresPool(
            replace(base, db_pool_pre_ping=False)
        ),
        "shipped: raw_connection() + gate, pre-ping on": lambda: PostgresPool(
            replace(base, db_pool_pre_ping=True)
        ),
    }
    figures: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, make in variants.items():
            pool = make()
            try:
                figures[name].append(await cpu_per_request(pool, args.requests, args.tasks))
            finally:
                await pool.close()
    baseline = statistics.median(figures[next(iter(variants))])
    rows = [
        (name, f"{statistics.median(v):.0f}", f"{min(v):.0f}–{max(v):.0f}",
         f"{statistics.median(v) / baseline:.2f}×")
        for name, v in figures.items()
    ]  # fmt: skip
    print(markdown_table(("checkout", "CPU µs/request (median)", "range", "÷ first"), rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=7)
    uvloop.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
