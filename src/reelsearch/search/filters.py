"""Filters as SQL conditions on ``movies AS m``: year, rating, votes, kind, genres.

Built once per search from the validated query and the catalog snapshot
(which knows the genres and kinds), and appended to every statement's WHERE;
for a text search also as values (``ColumnFilter``), which the title postings'
match sets are filtered with in memory (``filter_columns.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reelsearch.errors import InvalidRequest
from reelsearch.search.filter_columns import ColumnFilter
from reelsearch.search.query import SearchQuery
from reelsearch.search.snapshot import CatalogSnapshot


@dataclass(frozen=True, slots=True)
class Filters:
    """SQL conditions on ``m`` and their parameters; for a text search, the same as values
    (``columns``: the title postings' match sets filtered in memory, rank_sets.py), None
    where a condition has no such form (a year typed among the words)."""

    sql: str
    params: tuple[Any, ...]
    columns: ColumnFilter | None = None


NO_FILTERS = Filters("", ())


def check_filter_names(snapshot: CatalogSnapshot, query: SearchQuery) -> None:
    """Raise the 400 ``build_filters`` would for a kind or genre the catalog lacks, in its
    order, naming the value as ``query`` holds it.

    For a caller about to change the names' spelling (the result cache lowercases
    genres for its key) that wants the client's own spelling in the message.
    """
    if query.kind is not None and query.kind not in snapshot.kinds:
        raise _unknown_kind(snapshot, query.kind)
    for name in query.genres:
        if name.lower() not in snapshot.genres:
            raise _unknown_genre(snapshot, name)


def _unknown_kind(snapshot: CatalogSnapshot, kind: str) -> InvalidRequest:
    known = ", ".join(sorted(snapshot.kinds))
    return InvalidRequest(f"kind {kind[:30]!r} is not in the catalog; known: {known}",
                          param="kind")  # fmt: skip


def _unknown_genre(snapshot: CatalogSnapshot, name: str) -> InvalidRequest:
    known = ", ".join(sorted(display for _, display in snapshot.genres.values()))
    return InvalidRequest(f"genre {name[:30]!r} is not in the catalog; known: {known}",
                          param="genres")  # fmt: skip


def build_filters(snapshot: CatalogSnapshot, query: SearchQuery, *, text: bool) -> Filters:
    """The SQL conditions of the query's filters; an unknown genre or kind is a 400."""
    if (
        query.year_from is None
        and query.year_to is None
        and query.min_rating is None
        and query.min_votes is None
        and query.kind is None
        and not query.genres
    ):
        return NO_FILTERS  # most searches: nothing to build
    parts: list[str] = []
    params: list[Any] = []
    mask = 0
    bounds = (
        ("m.year >= ?", query.year_from),
        ("m.year <= ?", query.year_to),
        ("m.rating >= ?", query.min_rating),
        ("m.votes >= ?", query.min_votes),
    )
    for condition, value in bounds:
        if value is not None:
            parts.append(condition)
            params.append(value)
    if query.kind is not None:
        if query.kind not in snapshot.kinds:
            raise _unknown_kind(snapshot, query.kind)
        parts.append("m.kind = ?")
        params.append(query.kind)
    if query.genres:
        bits = []
        for name in query.genres:
            found = snapshot.genres.get(name.lower())
            if found is None:
                raise _unknown_genre(snapshot, name)
            bits.append(found[0])
        # One bit each: "Drama,drama" names one genre (a sum of repeated bits would be
        # another genre's bit, and "all" would count it twice).
        bits = list(dict.fromkeys(bits))
        mask = sum(1 << bit for bit in bits)
        if text:
            # Few rows reach the filter after the text match: a bit test is cheapest.
            if query.genres_mode == "all":
                parts.append("(m.genre_mask & ?) = ?")
                params += [mask, mask]
            else:
                parts.append("(m.genre_mask & ?) != 0")
                params.append(mask)
        else:
            # Browsing a genre: read only its rows through movie_genres.
            marks = ", ".join("?" * len(bits))
            having = f" GROUP BY search_rank HAVING count(*) = {len(bits)}"
            parts.append(
                "m.search_rank IN (SELECT search_rank FROM movie_genres "
                f"WHERE genre_bit IN ({marks})"
                f"{having if query.genres_mode == 'all' and len(bits) > 1 else ''})"
            )
            params += bits
    sql = "".join(f" AND {part}" for part in parts)
    if not text:  # browsing reads its rows through the indexes, never the postings
        return Filters(sql, tuple(params))
    columns = ColumnFilter(
        year_from=query.year_from,
        year_to=query.year_to,
        min_rating=query.min_rating,
        min_votes=query.min_votes,
        kind=query.kind,
        genre_mask=mask,
        all_genres=query.genres_mode == "all",
    )
    return Filters(sql, tuple(params), columns)


def with_year(filters: Filters, year: int) -> Filters:
    """A year typed among the words: the movie is from that year, or its title says it."""
    return Filters(
        f"{filters.sql} AND (m.year = ? OR (' ' || m.norm_title || ' ') LIKE ?)",
        (*filters.params, year, f"% {year} %"),
    )
