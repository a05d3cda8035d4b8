"""The per-search deadline at the reader: statements past it are stopped, on both backends.

A statement that never ends (a recursive CTE with no stop) stands for a
search gone slow; the readers are the real ones on real connections.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest

from reelsearch.config import Settings
from reelsearch.errors import SearchCancelled, SearchTimedOut
from reelsearch.http.disconnect import ARM_AFTER_SECONDS, unless_disconnected
from reelsearch.search.deadline import Deadline
from reelsearch.search.postgres import PostgresSearchEngine
from reelsearch.search.query import parse_search
from reelsearch.search.readers import PostgresReader, SqliteReader

ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
# The same, to ?: long past a 20 ms slice (~0.3 s), well within a 10 s deadline.
COUNT_TO = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) "
    "SELECT count(*) FROM c"
)


def _reader(path: Path, deadline: Deadline, *, threads: int, inline: float) -> SqliteReader:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    limiter = anyio.CapacityLimiter(threads) if threads else None
    reader = SqliteReader(conn, deadline, threads=limiter, inline_seconds=inline)
    reader.watch()
    return reader


async def _ticks_during(work: Callable[[], object]) -> tuple[int, float, BaseException | None]:
    """How often a 5 ms ticker ran on the loop while ``work`` ran, its seconds and its error."""
    ticks = 0
    error: BaseException | None = None

    async def tick() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.005)
            ticks += 1

    started = time.monotonic()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(tick)
        try:
            await work()  # type: ignore[misc]
        except Exception as exc:
            error = exc
        tasks.cancel_scope.cancel()
    return ticks, time.monotonic() - started, error


async def test_slow_statement_leaves_the_loop_then_stops_at_the_deadline(
    sample_settings: Settings,
) -> None:
    """Inline, a statement past its 20 ms slice moves to a thread (the loop keeps
    ticking) and is interrupted at the 300 ms deadline: SearchTimedOut."""
    reader = _reader(Path(sample_settings.sqlite_path), Deadline(0.3), threads=1, inline=0.02)
    ticks, seconds, error = await _ticks_during(lambda: reader.row(ENDLESS))
    assert isinstance(error, SearchTimedOut)
    assert str(error) == "the search took longer than its deadline of 300 ms"
    assert 0.29 <= seconds < 1.0, seconds
    assert ticks >= 20, ticks  # 300 ms of 5 ms ticks, less the first slice and scheduling
    # The connection is usable again: the interrupt ended only that statement.
    reader.unwatch()
    assert reader.conn.execute("SELECT 1").fetchone() == (1,)


async def test_a_slow_statement_that_finishes_in_its_thread_returns_its_rows(
    sample_settings: Settings,
) -> None:
    """``rows()`` of a statement past its 20 ms slice: moved to a thread, it returns its
    rows, and the loop kept ticking meanwhile. (A compiled reader once typed the
    interrupted-statement marker as a list here and raised TypeError, a 500.)"""
    reader = _reader(Path(sample_settings.sqlite_path), Deadline(10), threads=1, inline=0.02)
    found: list[object] = []

    async def count() -> None:
        found.extend(await reader.rows(COUNT_TO, (2_000_000,)))

    ticks, seconds, error = await _ticks_during(count)
    assert None is error
    assert found == [(2_000_000,)]
    assert reader.interrupted  # it was stopped on the loop, then ran again in the thread
    assert ticks >= 1, (ticks, seconds)


async def test_without_threads_the_statement_stops_at_the_deadline(
    sample_settings: Settings,
) -> None:
    """With nowhere to move it, a slow statement runs inline until the deadline, then stops."""
    reader = _reader(Path(sample_settings.sqlite_path), Deadline(0.1), threads=0, inline=0.02)
    started = time.monotonic()
    with pytest.raises(SearchTimedOut):
        await reader.rows(ENDLESS)
    assert 0.09 <= time.monotonic() - started < 0.6


async def test_a_cancelled_deadline_interrupts_the_running_statement(
    sample_settings: Settings,
) -> None:
    """Cancelling (the client went away) stops a statement running in a thread: SearchCancelled."""
    deadline = Deadline(10)
    reader = _reader(Path(sample_settings.sqlite_path), deadline, threads=1, inline=0)

    async def cancel_soon() -> None:
        await anyio.sleep(0.1)
        deadline.cancel()

    started = time.monotonic()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(cancel_soon)
        with pytest.raises(SearchCancelled):
            await reader.row(ENDLESS)
    assert time.monotonic() - started < 1.0


async def test_a_past_deadline_runs_no_statement(sample_settings: Settings) -> None:
    """A search already past its deadline stops before its next statement."""
    statements: list[str] = []
    deadline = Deadline(0.01)
    reader = _reader(Path(sample_settings.sqlite_path), deadline, threads=1, inline=0.02)
    reader.conn.set_trace_callback(statements.append)
    await anyio.sleep(0.02)
    with pytest.raises(SearchTimedOut):
        await reader.row("SELECT 1")
    assert statements == []


@pytest.mark.postgres
async def test_postgres_statement_is_cancelled_at_the_deadline(
    postgres_databases: Callable[[str], str],
) -> None:
    """PostgreSQL cancels a statement past the deadline; the connection stays usable."""
    url = postgres_databases("deadline")
    conn = await asyncpg.connect(Settings(database_url=url).postgres_dsn)
    try:
        reader = PostgresReader(conn, Deadline(0.2))
        started = time.monotonic()
        with pytest.raises(SearchTimedOut):
            await reader.row("SELECT pg_sleep(5)")
        assert time.monotonic() - started < 1.5
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()


@pytest.mark.postgres
async def test_postgres_search_marks_its_wait_for_a_connection(
    small_pg_settings: Settings,
) -> None:
    """While a search waits for the pool's only connection its deadline says queued
    (``working_since`` is inf), and the disconnect watch does not start however long
    it waits: only ARM_AFTER_SECONDS after the search has its connection, if ever.
    (A year among the words: a search the title postings and hit rows answer needs no
    connection.)"""
    engine = await PostgresSearchEngine.open(replace(small_pg_settings, db_pool_size=1))
    receives: list[float] = []
    stays = asyncio.Event()  # the client stays connected: never set

    async def receive() -> dict[str, Any]:
        receives.append(time.monotonic())
        if len(receives) == 1:
            return {"type": "http.request", "body": b"", "more_body": False}
        await stays.wait()
        return {"type": "http.disconnect"}

    try:
        deadline = Deadline(5)
        query = parse_search([("q", "matrix 1999")])
        async with engine.pool.connection():  # the only connection: the search queues
            search = asyncio.ensure_future(
                unless_disconnected(receive, deadline, lambda: engine.search(query, deadline))
            )
            await asyncio.sleep(ARM_AFTER_SECONDS * 6)
            queued = deadline.working_since
            released = time.monotonic()
        result = await search
    finally:
        await engine.close()
    assert math.inf == queued
    assert released <= deadline.working_since < math.inf
    # A loaded machine may make the search itself outlast ARM_AFTER_SECONDS: then it
    # is watched, from then on (uvloop and asyncio timers may fire a millisecond early).
    assert all(at >= deadline.working_since + ARM_AFTER_SECONDS - 0.001 for at in receives)
    assert result.hits and not deadline.is_cancelled
