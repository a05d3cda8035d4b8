"""A search's reader times its own statements for the metrics, once each, by shape.

The read pool's connections time every fetched statement (db/timing.py); the
search path's reader runs past that timing and records with the two clock
reads it makes for the engine's database stage anyway. Either way a statement
is one observation under its shape, and a statement that never returned rows
(BEGIN, COMMIT, one stopped at the deadline) is none.
"""

from __future__ import annotations

import sqlite3

import pytest

from reelsearch.config import Settings
from reelsearch.db import ReadPool
from reelsearch.db.timing import StatementTimes
from reelsearch.errors import SearchTimedOut
from reelsearch.search.deadline import Deadline
from reelsearch.search.readers import SqliteReader

TEXT = (
    "SELECT m.search_rank FROM title_fts JOIN movies AS m ON m.search_rank = title_fts.rowid "
    "WHERE title_fts MATCH ? ORDER BY m.search_rank LIMIT ?"
)
COUNT = "SELECT count(*) FROM movies AS m WHERE m.year >= ?"
ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


def observed(times: StatementTimes) -> dict[str, int]:
    return {shape: sum(found.counts) for shape, found in times.drain().items()}


async def test_a_reader_with_times_records_each_statement_once(sample_settings: Settings) -> None:
    """Two statements through a lent connection: one text_match and one count
    observation, none for the lend's BEGIN and COMMIT, none twice (the
    connection's own timing is passed by)."""
    pool = ReadPool(sample_settings)
    try:
        times = pool.timed_statements
        assert times is pool.statement_times  # metrics on: the pool's record
        observed(times)  # the pool's own start-up reads
        conn, stack = pool.lend()
        try:
            reader = SqliteReader(conn, Deadline(10), times=times)
            assert len(await reader.rows(TEXT, ("matrix", 3))) == 3
            assert await reader.row(COUNT, (2020,)) is not None
        finally:
            pool.end(conn, stack)
        assert observed(times) == {"text_match": 1, "count": 1}
    finally:
        pool.dispose()


async def test_a_statement_stopped_at_the_deadline_is_not_recorded(
    sample_settings: Settings,
) -> None:
    """A statement interrupted at the deadline raises SearchTimedOut and leaves no
    observation (it returned no rows), as the connection's timing did."""
    pool = ReadPool(sample_settings)
    try:
        times = pool.statement_times
        observed(times)
        conn, stack = pool.lend()
        try:
            reader = SqliteReader(conn, Deadline(0.05), times=times)
            reader.watch()
            with pytest.raises(SearchTimedOut):
                await reader.row(ENDLESS)
            reader.unwatch()
        finally:
            pool.end(conn, stack)
        assert observed(times) == {}
    finally:
        pool.dispose()


async def test_a_reader_without_times_leaves_timing_to_the_connection(
    sample_settings: Settings,
) -> None:
    """Without ``times`` the reader runs the connection's execute: the timing
    connection records the statement, once."""
    pool = ReadPool(sample_settings)
    try:
        times = pool.statement_times
        observed(times)
        with pool.connection() as conn:
            reader = SqliteReader(conn, Deadline(10))
            await reader.rows(TEXT, ("matrix", 1))
        assert observed(times) == {"text_match": 1}
    finally:
        pool.dispose()


def test_metrics_off_gives_the_reader_nothing_to_record_into(sample_settings: Settings) -> None:
    """With metrics off the pool offers no record: readers time nothing for the metrics."""
    from dataclasses import replace

    pool = ReadPool(replace(sample_settings, metrics_enabled=False))
    try:
        assert pool.timed_statements is None
    finally:
        pool.dispose()


def test_a_lent_connection_reads_in_one_transaction_and_comes_back(
    sample_settings: Settings,
) -> None:
    """``lend`` gives a connection inside a read transaction; ``end`` closes it and
    returns the connection to the stack (the next lend gets the same one)."""
    pool = ReadPool(sample_settings)
    try:
        idle = pool._pool.idle()
        conn, stack = pool.lend()
        assert (conn.in_transaction, pool._pool.idle()) == (True, idle - 1)
        pool.end(conn, stack)
        assert (conn.in_transaction, pool._pool.idle()) == (False, idle)
        again, stack = pool.lend()
        pool.end(again, stack)
        assert again is conn
    finally:
        pool.dispose()


async def test_a_connection_with_an_interrupted_statement_is_replaced(
    sample_settings: Settings,
) -> None:
    """A statement stopped by the progress handler can leave sqlite3's cached statement in use
    (it is prepared again on every later execute), so the reader notes the interrupt
    and ``end(replace=True)`` puts a fresh connection in the stack in its place; one
    read without an interrupt gives its connection back as it was."""
    pool = ReadPool(sample_settings)
    try:
        idle = pool._pool.idle()
        conn, stack = pool.lend()
        reader = SqliteReader(conn, Deadline(10))
        await reader.rows(TEXT, ("matrix", 3))
        assert reader.interrupted is False
        pool.end(conn, stack, replace=reader.interrupted)
        kept, stack = pool.lend()
        assert kept is conn
        reader = SqliteReader(kept, Deadline(0.05))
        reader.watch()
        with pytest.raises(SearchTimedOut):
            await reader.row(ENDLESS)
        reader.unwatch()
        assert reader.interrupted is True
        pool.end(kept, stack, replace=reader.interrupted)
        fresh, stack = pool.lend()
        try:
            assert fresh is not kept and pool._pool.idle() == idle - 1
            assert fresh.execute("SELECT count(*) FROM movies").fetchone()[0] > 0
            with pytest.raises(sqlite3.ProgrammingError):  # the old one was closed
                kept.execute("SELECT 1")
        finally:
            pool.end(fresh, stack)
    finally:
        pool.dispose()
