"""The reader a PostgreSQL search's algorithm reads through: answers found in one statement.

``postgres_page.py`` sends one statement for a relevance page and turns its
rows into ``Answers``, keyed by the statements the algorithm would send;
``ReplayReader`` answers from them, and sends anything else to the server
(counting it), so a replay can be slower than foreseen, never different.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reelsearch.search.readers import Reader, Row
from reelsearch.search.rows import COLUMNS

Statement = tuple[str, tuple[Any, ...]]


@dataclass(slots=True)
class Answers:
    """What the one statement found, as the algorithm's own reads would have."""

    by_statement: dict[Statement, list[Row]] = field(default_factory=dict)
    rows_by_rank: dict[int, Row] = field(default_factory=dict)
    # Alternate and original titles of the movies in ``titled`` (annotate's read),
    # as (movie id, title) in its order.
    titles: list[Row] = field(default_factory=list)
    titled: frozenset[int] = frozenset()

    def add(self, other: Answers) -> None:
        """Also answer what ``other`` answers."""
        self.by_statement.update(other.by_statement)
        self.rows_by_rank.update(other.rows_by_rank)
        titled = self.titled
        self.titles = [*self.titles, *(row for row in other.titles if row[0] not in titled)]
        self.titled = titled | other.titled


class ReplayReader:
    """A Reader that answers from one statement's results; anything else from the server.

    ``round_trips`` counts the statements it sent to the server (the one
    statement included, when the engine sends it through this reader).
    ``before_miss`` is awaited once, before the first statement it sends that
    matches titles: the engine switches the connection back to custom plans
    there (0022); reads by rank or id need no switch.
    """

    __slots__ = ("answers", "before_miss", "inner", "more", "round_trips")

    def __init__(self, inner: Reader, answers: Answers | None = None) -> None:
        self.inner = inner
        self.answers = answers or Answers()
        self.round_trips = 0
        # Asked on a miss: one more statement's answers (for the words the
        # algorithm fell back to), or None.
        self.more: Callable[[str, Sequence[Any]], Awaitable[Answers | None]] | None = None
        self.before_miss: Callable[[], Awaitable[None]] | None = None

    @property
    def seconds(self) -> float:
        """The server's statement time: every statement, the one included, goes through inner."""
        return self.inner.seconds

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        found = self._answer(sql, params)
        if found is None and self.more is not None:
            more = await self.more(sql, params)
            if more is not None:
                self.answers.add(more)
                found = self._answer(sql, params)
        if found is not None:
            return found
        await self._miss(sql)
        return await self.inner.rows(sql, params)

    async def row(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        found = self._answer(sql, params)
        if found is not None:
            return found[0] if found else None
        await self._miss(sql)
        return await self.inner.row(sql, params)

    async def _miss(self, sql: str) -> None:
        self.round_trips += 1
        if sql.startswith(_PLAN_FREE):
            return  # no tsquery: any plan will do, no round trip to switch (0037)
        before, self.before_miss = self.before_miss, None
        if before is not None:
            await before()

    def _answer(self, sql: str, params: Sequence[Any]) -> list[Row] | None:
        answers = self.answers
        found = answers.by_statement.get((sql, tuple(params)))
        if found is not None:
            return found
        if sql.startswith(_ROWS_BY_RANK) and answers.rows_by_rank:
            rows = answers.rows_by_rank
            if all(rank in rows for rank in params):
                return [rows[rank] for rank in params]
        elif sql.startswith(_TITLES_OF) and answers.titled:
            wanted = set(params)
            if wanted <= answers.titled:
                return [row for row in answers.titles if row[0] in wanted]
        return None


# annotate._alternate_titles_shown: the alternate and original titles of some movies.
_TITLES_OF = "SELECT movie_id, title FROM alt_titles WHERE movie_id IN ("
# TextStatements.rows_by_rank: the hit columns of some ranks.
_ROWS_BY_RANK = f"SELECT {COLUMNS} FROM movies AS m WHERE m.search_rank IN ("
# Reads through a primary key or unique index, whatever the plan mode.
_PLAN_FREE = (_ROWS_BY_RANK, _TITLES_OF)
