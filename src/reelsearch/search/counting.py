"""The text-match statements every page reads through: exists, count under a cap, rows by rank.

``TextStatements`` holds the FROM/WHERE fragments of one dialect, built once,
and the count caps from the settings, so relevance pages, sorted pages and
facets all count and fetch the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reelsearch.config import Settings
from reelsearch.search.filters import Filters
from reelsearch.search.readers import Reader, Row
from reelsearch.search.rows import COLUMNS, SEARCH_RANK
from reelsearch.search.sql import Dialect

# A statement and its parameters.
Statement = tuple[str, tuple[Any, ...]]

# Text with filters is counted exactly only this far (total_is_exact=false beyond).
FILTERED_COUNT_CAP = 100


class TextStatements:
    """SQL over the title index for one dialect, with the settings' count caps."""

    def __init__(self, settings: Settings, dialect: Dialect) -> None:
        self.settings = settings
        self.dialect = dialect
        # Fragments for "the text matches" with and without columns of movies.
        self.text = f"{dialect.text_source} WHERE {dialect.text_match}"
        self.ranks = f"{dialect.rank_source} WHERE {dialect.text_match}"
        # Statement texts by the filters' SQL (or the count of ranks asked), built
        # once: a search formatted each of them anew, and a new string is hashed
        # again by every cache it meets (the shape of the metrics, sqlite3's
        # statements). Filters' SQL is made of fixed parts, so the keys are few.
        self._exists_sql: dict[str, str] = {}
        self._count_sql: dict[str, str] = {}
        self._by_rank_sql: dict[int, str] = {}

    def text_from(self, filters: Filters) -> str:
        """FROM ... WHERE text matches: joined to movies only if filters need its columns."""
        return self.text if filters.sql else self.ranks

    async def rows_by_rank(
        self, db: Reader, ranks: Sequence[int], known: dict[int, Row]
    ) -> list[Row]:
        """The hit columns of ``ranks``, in that order: ``known`` ones, the rest in one read."""
        missing = [rank for rank in ranks if rank not in known]
        if missing:
            sql = self._by_rank_sql.get(len(missing))
            if sql is None:  # at most one per page size (ranks <= offset + limit)
                marks = ",".join("?" * len(missing))
                sql = f"SELECT {COLUMNS} FROM movies AS m WHERE m.search_rank IN ({marks})"
                self._by_rank_sql[len(missing)] = sql
            known = dict(known)
            known.update((row[SEARCH_RANK], row) for row in await db.rows(sql, missing))
        return [known[rank] for rank in ranks]

    async def exists(self, db: Reader, expression: str, filters: Filters) -> bool:
        found = await db.row(*self.exists_statement(expression, filters))
        return found is not None

    def exists_statement(self, expression: str, filters: Filters) -> Statement:
        """Whether any title matches: the statement and its parameters (also the
        PostgreSQL page's key for the answer it found in its one statement)."""
        sql = self._exists_sql.get(filters.sql)
        if sql is None:
            sql = f"SELECT 1 FROM {self.text_from(filters)}{filters.sql} LIMIT 1"
            self._exists_sql[filters.sql] = sql
        return sql, (expression, *filters.params)

    def count_cap(self, filters: Filters) -> int:
        cap = self.settings.max_exact_total
        return min(cap, FILTERED_COUNT_CAP) if filters.sql else cap

    def capped(self, total: int, filters: Filters) -> tuple[int, bool]:
        """``(total, exact)`` under the same cap ``_count`` uses, whichever way it was found."""
        cap = self.count_cap(filters)
        return (cap, False) if total > cap else (total, True)

    async def count(self, db: Reader, expression: str, filters: Filters) -> tuple[int, bool]:
        # Without filters the count reads only the title index. With them each
        # match costs a movies lookup, and a selective filter over a broad text
        # ("the" in 1970-1972) may read tens of thousands to find the cap.
        cap = self.count_cap(filters)
        total = await self.count_up_to(db, expression, filters, cap + 1)
        return (cap, False) if total > cap else (total, True)

    async def count_up_to(self, db: Reader, expression: str, filters: Filters, limit: int) -> int:
        """How many titles match, counted no further than ``limit``."""
        found = await db.row(*self.count_up_to_statement(expression, filters, limit))
        assert found is not None
        return int(found[0])

    def count_up_to_statement(self, expression: str, filters: Filters, limit: int) -> Statement:
        """``count_up_to``'s statement and parameters."""
        sql = self._count_sql.get(filters.sql)
        if sql is None:
            sql = (
                f"SELECT count(*) FROM (SELECT 1 FROM {self.text_from(filters)}"
                f"{filters.sql} LIMIT ?) AS matches"
            )
            self._count_sql[filters.sql] = sql
        return sql, (expression, *filters.params, limit)
