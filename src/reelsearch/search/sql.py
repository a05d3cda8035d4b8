"""What differs between the SQL backends, so one search algorithm runs on both.

The tiered search (``search/tiered.py``) writes its SQL once, with ``?``
placeholders and the few fragments below; a ``Dialect`` fills them in for
SQLite (FTS5, the title index's rowid is the popularity rank) or PostgreSQL
(a tsvector column with a GIN index on movies itself). The statements run
through a ``Reader`` (``search/readers.py``; re-exported here, where the
snapshot loader imports them from).
"""

from __future__ import annotations

from dataclasses import dataclass

from reelsearch.search.readers import Reader, Row, SqliteReader, run_inline
from reelsearch.search.syntax import FTS5, TSQUERY, MatchSyntax

__all__ = ["POSTGRESQL", "SQLITE", "Dialect", "Reader", "Row", "SqliteReader", "run_inline"]


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
