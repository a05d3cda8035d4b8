"""A movie's alternate titles in its title-index document: one rule for every writer.

The title index holds one document per movie: its normalized title, then
its other normalized titles (alternate and original), each after the
separator token ``JOINED_TITLES``::

    spider man \ue000 el hombre arana \ue000 homem aranha

``movies.alt_norm_titles`` stores the part after the first separator (NULL
when there is none). The SQLite import indexes ``title_document`` in FTS5;
PostgreSQL writes the same token sequence as a tsvector
(``catalog/tsvector.py``). Both importers, the migration and the
write-back build the column with ``joined_alt_titles`` (the PostgreSQL
import with its SQL twin, checked row by row by the tests).
"""

from __future__ import annotations

from collections.abc import Iterable

from reelsearch.catalog.records import MovieRecord
from reelsearch.search.normalize import JOINED_TITLES

# A title's alternates in the index, at most. IMDb lists dozens of akas for
# the most-translated films (one per region, mostly the same few spellings);
# past 32 distinct ones the document grows without adding a title anyone
# types, and every match on the movie reads a longer tsvector.
MAX_ALT_TITLES = 32


def joined_alt_titles(norm_title: str, alt_norm_titles: Iterable[str]) -> str | None:
    """``movies.alt_norm_titles``: distinct alternates, not empty, not the title itself.

    Sorted by code point (PostgreSQL: ``COLLATE "C"``), the first
    ``MAX_ALT_TITLES`` kept, joined by ``JOINED_TITLES``; None when none remain.
    """
    alternates = sorted({t for t in alt_norm_titles if t and t != norm_title})
    return JOINED_TITLES.join(alternates[:MAX_ALT_TITLES]) or None


def alt_norm_titles_sql(alt_titles: str, movies: str) -> str:
    """``joined_alt_titles`` in PostgreSQL: ``(id, alt_norm_titles)`` of each movie that has some.

    Reads the alternates from the table ``alt_titles`` and the titles from
    ``movies`` (any relation with ``id`` and ``norm_title``).
    """
    return f"""
    SELECT movie_id AS id,
        string_agg(norm_title, '{JOINED_TITLES}' ORDER BY norm_title) AS alt_norm_titles
    FROM (
        SELECT movie_id, norm_title,
            row_number() OVER (PARTITION BY movie_id ORDER BY norm_title) AS n
        FROM (
            SELECT DISTINCT a.movie_id, a.norm_title COLLATE "C" AS norm_title
            FROM {alt_titles} AS a JOIN {movies} AS m ON m.id = a.movie_id
            WHERE a.norm_title <> '' AND a.norm_title <> m.norm_title
        ) AS distinct_titles
    ) AS numbered
    WHERE n <= {MAX_ALT_TITLES}
    GROUP BY movie_id
    """


def split_alt_titles(joined: str | None) -> list[str]:
    """The alternates held in an ``alt_norm_titles`` value (none for NULL)."""
    return joined.split(JOINED_TITLES) if joined else []


def title_document(norm_title: str, joined: str | None) -> str:
    """The title-index document: the title, then ``JOINED_TITLES`` and the alternates."""
    return norm_title if joined is None else norm_title + JOINED_TITLES + joined


def other_titles(record: MovieRecord) -> list[str]:
    """The record's original and alternate titles other than its title, each once.

    Every writer stores these in ``alt_titles``, so an original title is
    searchable whether or not the source also lists it among the alternates.
    """
    titles = (
        [record.original_title, *record.alt_titles] if record.original_title else record.alt_titles
    )
    return [t for t in dict.fromkeys(titles) if t and t != record.title]
