"""Overlap: a server step on the import's connection, in a thread, on the real server."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
import pytest

from reelsearch.catalog.postgres_overlap import Overlap
from reelsearch.config import Settings

pytestmark = pytest.mark.postgres


def connection(postgres_databases: Callable[[str], str], name: str) -> psycopg.Connection:  # type: ignore[type-arg]
    return psycopg.connect(Settings(database_url=postgres_databases(name)).postgres_dsn)


def test_join_returns_what_the_step_returned(postgres_databases: Callable[[str], str]) -> None:
    """The caller's thread runs on while the server works; join() hands back the result."""
    with connection(postgres_databases, "overlap_result") as conn:
        started = time.perf_counter()
        step = Overlap(conn, lambda c: c.execute("SELECT 42 FROM pg_sleep(0.3)").fetchone())
        returned_after = time.perf_counter() - started

        assert (42,) == step.join()
        assert returned_after < 0.2


def test_join_raises_the_error_of_the_step(postgres_databases: Callable[[str], str]) -> None:
    """A statement that fails in the thread fails the caller at join()."""
    with connection(postgres_databases, "overlap_error") as conn:
        step = Overlap(conn, lambda c: c.execute("SELECT 1 / 0"))

        with pytest.raises(psycopg.errors.DivisionByZero):
            step.join()


def test_cancel_stops_the_statement_and_frees_the_connection(
    postgres_databases: Callable[[str], str],
) -> None:
    """cancel() ends a long statement at once; the connection then rolls back and is usable."""
    with connection(postgres_databases, "overlap_cancel") as conn:
        step = Overlap(conn, lambda c: c.execute("SELECT pg_sleep(60)"))
        time.sleep(0.2)
        started = time.perf_counter()

        step.cancel()

        assert time.perf_counter() - started < 5
        with pytest.raises(psycopg.errors.QueryCanceled):
            step.join()
        conn.rollback()
        assert (1,) == conn.execute("SELECT 1").fetchone()
