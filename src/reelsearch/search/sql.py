"""What differs between the SQL backends, so one search algorithm runs on both.

The tiered search (``search/tiered.py``) writes its SQL once, with ``?``
placeholders and the few fragments below; a ``Dialect`` fills them in for
SQLite (FTS5, the title index's rowid is the popularity rank) or PostgreSQL
(a tsvector column with a GIN index on movies itself). A ``Reader`` runs the
statements: it is async so the PostgreSQL one can wait on the network, and
the SQLite one never suspends, so ``run_inline`` drives it without a loop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from reelsearch.search.matching import FTS5, TSQUERY, MatchSyntax

if TYPE_CHECKING:
    import asyncpg

T = TypeVar("T")
Row = Sequence[Any]


@dataclass(frozen=True, slots=True)
class Dialect:
    """SQL fragments of one backend's title index and catalog."""

    syntax: MatchSyntax  # how text expressions are written
    text_source: str  # FROM clause: title index joined to movies AS m
    rank_source: str  # FROM clause when only the rank is needed and nothing filters
    text_match: str  # WHERE condition: the title index matches the parameter
    text_rank: str  # the popularity rank, read from the title index
    facet_sum: str  # sum of 0/1 values, 0 when there are no rows
    # Snapshot reads (once per catalog version).
    vocabulary_sql: str  # (word, number of titles holding it)
    decades_sql: str


SQLITE = Dialect(
    syntax=FTS5,
    text_source="title_fts JOIN movies AS m ON m.search_rank = title_fts.rowid",
    rank_source="title_fts",
    text_match="title_fts MATCH ?",
    text_rank="title_fts.rowid",
    facet_sum="total({})",
    # Every indexed word but the separator between a movie's titles (U+E000).
    vocabulary_sql="SELECT term, doc FROM title_vocab WHERE term != char(57344)",
    # The (year, rank) index holds every year: read it, not the table.
    decades_sql=(
        "SELECT year / 10 * 10 AS decade, count(*) FROM movies INDEXED BY ix_movies_year "
        "WHERE year IS NOT NULL GROUP BY decade ORDER BY decade"
    ),
)

POSTGRESQL = Dialect(
    syntax=TSQUERY,
    text_source="movies AS m",
    rank_source="movies AS m",
    text_match="m.title_tsv @@ CAST(? AS tsquery)",
    text_rank="m.search_rank",
    facet_sum="coalesce(sum({}), 0)",
    vocabulary_sql="SELECT word, docs FROM title_words",
    decades_sql=(
        "SELECT year / 10 * 10 AS decade, count(*) FROM movies "
        "WHERE year IS NOT NULL GROUP BY decade ORDER BY decade"
    ),
)


class Reader(Protocol):
    """Runs read statements written with ``?`` placeholders."""

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def row(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...


class SqliteReader:
    """A sqlite3 connection behind the async Reader interface; it never suspends."""

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.conn.execute(sql, params).fetchall()

    async def row(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        found: Row | None = self.conn.execute(sql, params).fetchone()
        return found


class PostgresReader:
    """An asyncpg connection behind the Reader interface.

    asyncpg prepares each distinct statement once per connection and reuses
    it, so the engine's few statement shapes are parsed and planned once.
    """

    __slots__ = ("conn",)

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await self.conn.fetch(numbered(sql), *params)  # type: ignore[no-any-return]

    async def row(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return await self.conn.fetchrow(numbered(sql), *params)  # type: ignore[no-any-return]


Statement = tuple[str, tuple[Any, ...]]


class RecordingReader:
    """A Reader that notes every statement with its parameters, then runs it.

    For diagnostics: the EXPLAIN tests and the SQL-floor bench replay exactly
    what the engine sent.
    """

    __slots__ = ("inner", "seen")

    def __init__(self, inner: Reader, seen: list[Statement]) -> None:
        self.inner = inner
        self.seen = seen

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self.seen.append((sql, tuple(params)))
        return await self.inner.rows(sql, params)

    async def row(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        self.seen.append((sql, tuple(params)))
        return await self.inner.row(sql, params)


@lru_cache(maxsize=4096)
def numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...`` (statements never quote a ``?``)."""
    parts = sql.split("?")
    return "".join(f"{part}${n}" for n, part in enumerate(parts[:-1], start=1)) + parts[-1]


def run_inline(coroutine: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that never suspends (SQLite reads), without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("a read that should never wait suspended")
