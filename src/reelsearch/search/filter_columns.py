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
when the snapshot is loaded (``with_current``) into small arrays of their own,
tested the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from reelsearch.search.postings import Ranks
from reelsearch.search.postings_delta import rows_at_ranks
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
# (their reads at each reload, and a test per written movie a search matches, would
# cost more than they save).
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
    return _column_arrays(ranks, values, size, code), kinds


def _column_arrays(
    ranks: npt.NDArray[np.int64], values: Sequence[Sequence[Any]], size: int, code: dict[str, int]
) -> dict[str, npt.NDArray[Any]]:
    """``encode_filter_columns``' arrays, the kinds numbered by ``code``."""
    arrays: dict[str, npt.NDArray[Any]] = {
        name: np.zeros(size, dtype=kind) for name, kind in SECTION_TYPES.items()
    }
    nan = float("nan")
    arrays["year"][ranks] = [nan if row[0] is None else row[0] for row in values]
    arrays["rating"][ranks] = [nan if row[1] is None else row[1] for row in values]
    arrays["votes"][ranks] = [row[2] for row in values]
    arrays["kind"][ranks] = [code[str(row[3])] for row in values]
    arrays["genre_mask"][ranks] = [row[4] for row in values]
    return arrays


def _passing(
    arrays: dict[str, npt.NDArray[Any]],
    kinds: dict[str, int],
    at: npt.NDArray[Any],
    wanted: ColumnFilter,
) -> npt.NDArray[np.bool_]:
    """Whether each movie at the positions ``at`` of ``arrays`` passes ``wanted``, as the
    statement's WHERE has it (NaN, SQL's NULL, passes no bound)."""
    ok = np.ones(len(at), dtype=np.bool_)
    if wanted.year_from is not None:
        ok &= arrays["year"][at] >= wanted.year_from
    if wanted.year_to is not None:
        ok &= arrays["year"][at] <= wanted.year_to
    if wanted.min_rating is not None:
        ok &= arrays["rating"][at] >= wanted.min_rating
    if wanted.min_votes is not None:
        ok &= arrays["votes"][at] >= wanted.min_votes
    if wanted.kind is not None:
        code = kinds.get(wanted.kind)
        ok &= False if code is None else arrays["kind"][at] == code
    if wanted.genre_mask:
        genres = arrays["genre_mask"][at] & wanted.genre_mask
        ok &= genres == wanted.genre_mask if wanted.all_genres else genres != 0
    return ok


class FilterColumns:
    """The filtered columns of every movie at the import, with the current values of
    those written since (arrays of their own, by position in ``_current_ranks``)."""

    __slots__ = ("_arrays", "_current", "_current_ranks", "_kinds", "_top")

    def __init__(
        self,
        arrays: dict[str, npt.NDArray[Any]],
        kinds: Sequence[str] | dict[str, int],
        current: tuple[npt.NDArray[np.int64], dict[str, npt.NDArray[Any]]] | None = None,
    ) -> None:
        self._arrays = arrays
        self._kinds = (
            kinds if isinstance(kinds, dict) else {kind: n for n, kind in enumerate(kinds)}
        )
        self._top = len(arrays["votes"])  # ranks below this one were stored
        empty: tuple[npt.NDArray[np.int64], dict[str, npt.NDArray[Any]]] = (
            np.zeros(0, dtype=np.int64),
            {},
        )
        self._current_ranks, self._current = current if current is not None else empty

    def with_current(self, rows: Iterable[Sequence[Any]]) -> FilterColumns | None:
        """The same arrays, with the values now of the written movies ``rows`` (rank first,
        then ``CURRENT_SQL``'s columns) tested in their place; None if their kinds and
        the file's are more than a byte numbers."""
        by_rank = sorted((int(row[0]), tuple(row[1:])) for row in rows)
        values = [movie for _, movie in by_rank]
        kinds = dict(self._kinds)  # a kind new since the import: the next number
        for kind in sorted({str(movie[3]) for movie in values} - kinds.keys()):
            kinds[kind] = len(kinds)
        if len(kinds) > MAX_KINDS:
            return None
        ranks = np.array([rank for rank, _ in by_rank], dtype=np.int64)
        arrays = _column_arrays(np.arange(len(values)), values, len(values), kinds)
        return FilterColumns(self._arrays, kinds, (ranks, arrays))

    def keep(self, ranks: Ranks, wanted: ColumnFilter) -> Ranks:
        """The ranks of ``ranks`` (sorted) whose movies pass ``wanted``, in order."""
        if not len(ranks):
            return ranks
        written, top = self._current_ranks, self._top
        if not len(written) and ranks[-1] < top:  # most catalogs: no write since the import
            return ranks[_passing(self._arrays, self._kinds, ranks, wanted)]
        # A written movie's values now, from its own arrays; a rank past the file's and
        # not written holds no movie the postings can give (never one a statement would).
        position = np.searchsorted(written, ranks)
        position[position == len(written)] = 0
        is_written = written[position] == ranks if len(written) else ranks < 0
        stored = ~is_written & (ranks < top)
        ok = _passing(self._arrays, self._kinds, np.where(stored, ranks, 0), wanted) & stored
        if len(written):
            now = _passing(self._current, self._kinds, position, wanted)
            ok |= now & is_written
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
    return stored.with_current(await rows_at_ranks(reader, CURRENT_SQL, written))
