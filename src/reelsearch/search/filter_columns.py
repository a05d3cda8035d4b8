"""The columns a text search filters on, by rank, stored with the hit rows: a filtered
search's match sets filtered in memory (docs/decisions/0043-filters-and-postgres-rows-in-memory.md).

With the title postings (``rank_sets.py``) a search finds its titles in memory;
a filter on the movies' columns (a year range, a genre, a kind, a floor on
rating or votes) sent it back to the title index, one statement or more per
search reading full rows. The import now stores, beside each movie's hit row
(``hit_rows.py``), the five columns ``build_filters`` tests, as arrays by rank:

- ``year`` (float32: NaN for none, exact for any year), ``rating`` (float64:
  NaN for none, the catalog's double itself), ``votes`` (int64),
  ``genre_mask`` (int64, one bit per genre: ``catalog/records.py`` never uses
  the sign bit) and ``kind`` (uint8: the position of its name in the file's
  ``kinds`` header field).

NaN compares false, as SQL's NULL does, so a movie without a year is in no year
range and one without a rating under no rating floor, as the statement has it.

Movies written since the import (the hit rows' change records) hold ranks
whose stored values may be stale: their current values are read by statement
when the snapshot is loaded (``with_current``) and tested one by one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from reelsearch.search.postings import Ranks
from reelsearch.search.readers import Reader

# What the hit rows' read adds after the row's own columns (``hit_rows.ALL_ROWS_SQL``).
GENRE_MASK_COLUMN = "m.genre_mask"
# The sections of the hit rows file that hold them, and their types.
SECTION_TYPES = {"year": "<f4", "rating": "<f8", "votes": "<i8", "kind": "u1", "genre_mask": "<i8"}
# The current values of the movies written since the import, by rank (``with_current``).
CURRENT_SQL = (
    "SELECT m.search_rank, m.year, m.rating, m.votes, m.kind, m.genre_mask "
    "FROM movies AS m WHERE m.search_rank IN ({})"
)
# More movies written since the import than this: filters go to the catalog again
# (one statement per this many ranks at each reload, and a Python test per written
# movie a search matches, would cost more than they save).
MAX_WRITTEN = 5_000
# Kinds the ``kind`` section can name (a uint8 each).
MAX_KINDS = 255


@dataclass(frozen=True, slots=True)
class ColumnFilter:
    """A search's filters as ``build_filters`` writes them for a text search, as values."""

    year_from: int | None = None
    year_to: int | None = None
    min_rating: float | None = None
    min_votes: int | None = None
    kind: str | None = None
    genre_mask: int = 0
    all_genres: bool = False  # every genre of the mask (else any one)

    def accepts(self, year: Any, rating: Any, votes: int, kind: str, genre_mask: int) -> bool:
        """Whether one movie's values pass, as the statement's WHERE would have it."""
        if self.year_from is not None and (year is None or year < self.year_from):
            return False
        if self.year_to is not None and (year is None or year > self.year_to):
            return False
        if self.min_rating is not None and (rating is None or rating < self.min_rating):
            return False
        if self.min_votes is not None and votes < self.min_votes:
            return False
        if self.kind is not None and kind != self.kind:
            return False
        mask = self.genre_mask
        if mask and self.all_genres:
            return genre_mask & mask == mask
        return not mask or genre_mask & mask != 0


def encode_filter_columns(
    ranks: npt.NDArray[np.int64], values: Sequence[Sequence[Any]], size: int
) -> tuple[dict[str, npt.NDArray[Any]], list[str]] | None:
    """The sections (arrays of ``size`` by rank) of ``values``, each movie's (year, rating,
    votes, kind, genre_mask) at ``ranks``, and the kinds the ``kind`` section numbers;
    None if there are too many kinds to number."""
    kinds = sorted({str(row[3]) for row in values})
    if len(kinds) > MAX_KINDS:
        return None
    code = {kind: number for number, kind in enumerate(kinds)}
    arrays: dict[str, npt.NDArray[Any]] = {
        name: np.zeros(size, dtype=kind) for name, kind in SECTION_TYPES.items()
    }
    nan = float("nan")
    arrays["year"][ranks] = [nan if row[0] is None else row[0] for row in values]
    arrays["rating"][ranks] = [nan if row[1] is None else row[1] for row in values]
    arrays["votes"][ranks] = [row[2] for row in values]
    arrays["kind"][ranks] = [code[str(row[3])] for row in values]
    arrays["genre_mask"][ranks] = [row[4] for row in values]
    return arrays, kinds


class FilterColumns:
    """The filtered columns of every movie at the import, with the current values of
    those written since."""

    __slots__ = ("_arrays", "_current", "_current_ranks", "_kinds", "_top")

    def __init__(
        self,
        arrays: dict[str, npt.NDArray[Any]],
        kinds: Sequence[str],
        current: dict[int, tuple[Any, ...]] | None = None,
    ) -> None:
        self._arrays = arrays
        self._kinds = {kind: number for number, kind in enumerate(kinds)}
        self._top = len(arrays["votes"])  # ranks below this one were stored
        self._current = current or {}
        self._current_ranks = np.array(sorted(self._current), dtype=np.int64)

    def with_current(self, rows: Iterable[Sequence[Any]]) -> FilterColumns:
        """The same arrays, with the values now of the written movies ``rows`` (rank first,
        then ``CURRENT_SQL``'s columns) tested in their place."""
        current = {int(row[0]): tuple(row[1:]) for row in rows}
        return FilterColumns(self._arrays, list(self._kinds), current)

    def keep(self, ranks: Ranks, wanted: ColumnFilter) -> Ranks:
        """The ranks of ``ranks`` (sorted) whose movies pass ``wanted``, in order."""
        if not len(ranks):
            return ranks
        current, top = self._current, self._top
        special: npt.NDArray[np.bool_] | None = None
        at = ranks
        if current or ranks[-1] >= top:
            special = ranks >= top
            if current:  # both sorted: a binary search per rank, not a sort of both
                written = self._current_ranks
                found = np.searchsorted(written, ranks)
                found[found == len(written)] = 0
                special |= written[found] == ranks
            at = np.where(special, 0, ranks)
        arrays = self._arrays
        ok = np.ones(len(ranks), dtype=np.bool_)
        if wanted.year_from is not None:
            ok &= arrays["year"][at] >= wanted.year_from
        if wanted.year_to is not None:
            ok &= arrays["year"][at] <= wanted.year_to
        if wanted.min_rating is not None:
            ok &= arrays["rating"][at] >= wanted.min_rating
        if wanted.min_votes is not None:
            ok &= arrays["votes"][at] >= wanted.min_votes
        if wanted.kind is not None:
            code = self._kinds.get(wanted.kind)
            ok &= False if code is None else arrays["kind"][at] == code
        if wanted.genre_mask:
            genres = arrays["genre_mask"][at] & wanted.genre_mask
            ok &= genres == wanted.genre_mask if wanted.all_genres else genres != 0
        if special is not None:
            for index in np.flatnonzero(special).tolist():
                # A movie written since the import: its values now (none: not a movie the
                # catalog's postings can hold, so never one a statement would return).
                values = current.get(int(ranks[index]))
                ok[index] = values is not None and wanted.accepts(*values)
        return ranks[ok]


async def current_filter_columns(
    reader: Reader, stored: FilterColumns | None, written: Sequence[int]
) -> FilterColumns | None:
    """``stored`` (a file's own columns) with the values now of the movies at the ranks
    ``written`` (sorted; written since the import), read through ``reader``; None past
    ``MAX_WRITTEN`` of them."""
    if stored is None or not written:
        return stored
    if len(written) > MAX_WRITTEN:
        return None
    marks = ", ".join("?" * len(written))
    return stored.with_current(await reader.rows(CURRENT_SQL.format(marks), written))
