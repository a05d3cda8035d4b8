"""The pages of a search in a column's order: a text search sorted by a column, and
browsing (no words, filters only).

The result set of a sorted text search is the relevance page's (the same words
dropped, the same typo rule: ``TextPages.resolve_words``, ``TextPages.typos_join``),
read in the column's order through the index instead of ranked.
"""

from __future__ import annotations

from reelsearch.search.counting import TextStatements
from reelsearch.search.filters import Filters
from reelsearch.search.pages import TextPages
from reelsearch.search.plan import QueryPlan
from reelsearch.search.query import SearchQuery
from reelsearch.search.readers import Reader, Row
from reelsearch.search.rows import COLUMNS, NULLABLE_SORTS, SEARCH_RANK, SORT_SQL, Page
from reelsearch.search.snapshot import CatalogSnapshot


async def sorted_text_page(
    pages: TextPages,
    db: Reader,
    snapshot: CatalogSnapshot,
    query: SearchQuery,
    filters: Filters,
    plan: QueryPlan,
    *,
    count: bool = True,
) -> Page:
    """The same result set as relevance order, sorted by a column instead."""
    match = await pages.resolve_words(db, snapshot, query, filters, plan)
    expression = match.plain
    total, exact = await pages.statements.count(db, expression, filters)
    if await pages.typos_join(db, match, filters, total, exact):
        assert match.with_typos is not None
        expression = match.with_typos
        total, exact = await pages.statements.count(db, expression, filters)
    rows = await db.rows(
        f"SELECT {COLUMNS} FROM {pages.statements.text}{filters.sql} "
        f"ORDER BY {SORT_SQL[query.sort]} LIMIT ? OFFSET ?",
        (expression, *filters.params, query.limit, query.offset),
    )
    typo_ranks: frozenset[int] = frozenset()
    if expression is not match.plain:
        typo_ranks = frozenset(await _typo_only_ranks(pages.statements, db, match.plain, rows))
    return Page(rows, total, exact, expression, match, typo_ranks)


async def _typo_only_ranks(
    statements: TextStatements, db: Reader, expression: str, rows: list[Row]
) -> set[int]:
    """The ranks of ``rows`` that do NOT match ``expression`` (found through typos)."""
    ranks = [row[SEARCH_RANK] for row in rows]
    if not ranks:
        return set()
    marks = ",".join("?" * len(ranks))
    found = await db.rows(
        f"SELECT {statements.dialect.text_rank} FROM {statements.text} "
        f"AND m.search_rank IN ({marks})",
        (expression, *ranks),
    )
    return set(ranks) - {row[0] for row in found}


async def browse(
    statements: TextStatements,
    db: Reader,
    snapshot: CatalogSnapshot,
    query: SearchQuery,
    filters: Filters,
) -> tuple[list[Row], int, bool]:
    """No words: filters only, in the requested order, read through an index."""
    where = f"WHERE TRUE{filters.sql}"
    if filters.sql:
        cap = statements.settings.max_exact_total
        found = await db.row(
            f"SELECT count(*) FROM (SELECT 1 FROM movies AS m {where} LIMIT ?) AS matches",
            (*filters.params, cap + 1),
        )
        assert found is not None
        total, exact = min(int(found[0]), cap), found[0] <= cap
    else:
        total, exact = snapshot.movie_count, True
    column = NULLABLE_SORTS.get(query.sort)
    if column is None:
        rows = await db.rows(
            f"SELECT {COLUMNS} FROM movies AS m {where} "
            f"ORDER BY {SORT_SQL[query.sort]} LIMIT ? OFFSET ?",
            (*filters.params, query.limit, query.offset),
        )
        return rows, total, exact
    # Titles without the sort value come last. Two index walks, because
    # "ORDER BY year IS NULL, year" can't be read from the (year, rank) index.
    direction = "DESC" if query.sort.startswith("-") else ""
    rows = await db.rows(
        f"SELECT {COLUMNS} FROM movies AS m {where} AND m.{column} IS NOT NULL "
        f"ORDER BY m.{column} {direction}, m.search_rank LIMIT ? OFFSET ?",
        (*filters.params, query.limit, query.offset),
    )
    if len(rows) < query.limit:
        valued = await db.row(
            f"SELECT count(*) FROM movies AS m {where} AND m.{column} IS NOT NULL",
            filters.params,
        )
        assert valued is not None
        rows += await db.rows(
            f"SELECT {COLUMNS} FROM movies AS m {where} AND m.{column} IS NULL "
            "ORDER BY m.search_rank LIMIT ? OFFSET ?",
            (*filters.params, query.limit - len(rows), max(query.offset - valued[0], 0)),
        )
    return rows, total, exact
