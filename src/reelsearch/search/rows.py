"""Hit rows: the columns a search reads about each movie, and a page of them.

Every statement that returns hits selects ``COLUMNS`` in this order, so a row
becomes a hit (``row_to_hit``), and ranking, highlights and explain read
the normalized titles and popularity rank at fixed places.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reelsearch.search.assessment import Assessment, titles_of
from reelsearch.search.columns import ALT_NORM_TITLES as ALT_NORM_TITLES
from reelsearch.search.columns import COLUMNS as COLUMNS
from reelsearch.search.columns import NORM_TITLE as NORM_TITLE
from reelsearch.search.columns import SEARCH_RANK as SEARCH_RANK
from reelsearch.search.columns import SOURCE_KEY as SOURCE_KEY
from reelsearch.search.engine import Hit
from reelsearch.search.matching import TextMatch
from reelsearch.search.query import HIT_FIELDS
from reelsearch.search.readers import Row

if TYPE_CHECKING:
    from reelsearch.search.filters import Filters

SORT_SQL = {
    "relevance": "m.search_rank",
    "year": "m.year IS NULL, m.year, m.search_rank",
    "-year": "m.year IS NULL, m.year DESC, m.search_rank",
    "rating": "m.rating IS NULL, m.rating, m.search_rank",
    "-rating": "m.rating IS NULL, m.rating DESC, m.search_rank",
    "votes": "m.votes, m.search_rank",
    "-votes": "m.votes DESC, m.search_rank",
}
# Sorts on columns that may be NULL; such titles are listed after the others.
NULLABLE_SORTS = {"year": "year", "-year": "year", "rating": "rating", "-rating": "rating"}


def row_to_hit(row: Sequence[Any], fields: Sequence[str]) -> Hit:
    # "imdb:tt0133093" -> source "imdb", source_id "tt0133093": the key of the movie
    # where it came from, for clients to join hits to their own records.
    source, _, source_id = row[SOURCE_KEY].partition(":")
    movie = {
        "id": row[0], "title": row[1], "year": row[2], "rating": row[3], "votes": row[4],
        "genres": row[5].split(",") if row[5] else [], "runtime_min": row[6], "kind": row[7],
        "source": source, "source_id": source_id, "matched_title": None, "highlights": None,
    }  # fmt: skip
    if fields == HIT_FIELDS:  # the default: every field, already in this order
        return movie
    return {name: movie[name] for name in fields}


def titles_of_row(row: Row) -> list[str]:
    """A hit row's normalized titles, primary first."""
    return titles_of(row[NORM_TITLE], row[ALT_NORM_TITLES])


def titles_of_ranked_row(row: Row) -> list[str]:
    """The normalized titles of a (rank, *COLUMNS) row, primary first (no copy of the
    row less its rank)."""
    return titles_of(row[NORM_TITLE + 1], row[ALT_NORM_TITLES + 1])


@dataclass(slots=True)
class Page:
    """A page of hit rows, the size of the whole result set and how it was matched."""

    rows: list[Row]
    total: int
    exact: bool
    matched: str | None = None  # the text expression of the whole result set
    match: TextMatch | None = None
    typo_ranks: frozenset[int] = frozenset()  # hits found only through a typo
    filters: Filters | None = None  # the filters the page was read with (a year adds one)
    assessed: dict[int, Assessment] = field(default_factory=dict)  # by rank, if ranked so
