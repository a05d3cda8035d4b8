"""Checking the PostgreSQL one statement against the algorithm's own statements.

Shared by the tests of the statement's round trips (test_postgres_round_trips.py) and
of its probe paths (test_postgres_probe_paths.py): the search is run twice, once
answered from what the one statement found (each answer checked against the
statement the algorithm asked for, run on the server) and once statement by
statement, every read a round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from reelsearch.search.engine import SearchResult
from reelsearch.search.postgres import PostgresSearchEngine
from reelsearch.search.postgres_replay import ReplayReader
from reelsearch.search.query import SearchQuery
from reelsearch.search.readers import PostgresReader, Row


class CheckingReader(ReplayReader):
    """Answers as the one statement found, after checking each answer against the
    statement the algorithm asked for, run on the server."""

    def __init__(self, replay: ReplayReader) -> None:
        super().__init__(replay.inner, replay.answers)
        self.differing: list[str] = []
        self.answered = 0

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        answer = self._answer(sql, params)
        actual = await self.inner.rows(sql, params)
        if answer is None:
            return actual
        self.answered += 1
        if sorted(map(tuple, answer)) != sorted(map(tuple, actual)):
            self.differing.append(f"{sql} {params}: {len(answer)} rows, not {len(actual)}")
        return answer

    async def row(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        found = await self.rows(sql, params)
        return found[0] if found else None


async def one_statement_and_direct(
    engine: PostgresSearchEngine, conn: asyncpg.Connection, query: SearchQuery
) -> tuple[SearchResult, SearchResult, CheckingReader]:
    """The search answered from the one statement (checked), the same search statement
    by statement on ``conn``, and the checking reader (what differed, how many answered)."""
    snapshot = engine.snapshot
    direct = PostgresReader(conn)
    replay = await engine.read_page(direct, snapshot, query, count=True)
    checking = CheckingReader(replay)
    replayed = await engine.tiered.search(checking, snapshot, query)
    return replayed, await engine.tiered.search(direct, snapshot, query), checking
