"""Filters tested in memory on the columns stored with the hit rows
(search/filter_columns.py): each filter keeps exactly the movies the statement's WHERE
keeps (NULL years and ratings in no range), a filtered search on the title postings
sends no statement and answers what the title index answers, and movies written since
the import are tested with their values now."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import settings_for
from reelsearch.search.backends import open_blocking_engine
from reelsearch.search.engine import BlockingSearchEngine
from reelsearch.search.filter_columns import ColumnFilter, FilterColumns, encode_filter_columns
from reelsearch.search.query import parse_search
from reelsearch.search.sqlite import SqliteSearchEngine

KINDS = ("movie", "tvSeries", "short")
movie_values = st.tuples(
    st.one_of(st.none(), st.integers(1890, 2030)),
    st.one_of(st.none(), st.floats(1.0, 10.0, allow_nan=False)),
    st.integers(0, 3_000_000),
    st.sampled_from(KINDS),
    st.integers(0, (1 << 30) - 1),
)
column_filters = st.builds(
    ColumnFilter,
    year_from=st.one_of(st.none(), st.integers(1880, 2035)),
    year_to=st.one_of(st.none(), st.integers(1880, 2035)),
    min_rating=st.one_of(st.none(), st.floats(0.0, 10.0, allow_nan=False)),
    min_votes=st.one_of(st.none(), st.integers(0, 3_000_000)),
    kind=st.one_of(st.none(), st.sampled_from((*KINDS, "videoGame"))),
    genre_mask=st.integers(0, (1 << 30) - 1),
    all_genres=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(movie_values, min_size=1, max_size=60),
    column_filters,
    st.data(),
)
def test_keep_is_the_statements_where(
    movies: list[tuple[Any, ...]], wanted: ColumnFilter, data: st.DataObject
) -> None:
    """For any movies (some without a year or rating) at ranks 1..n, some written since
    the import (tested with their values now, the stored ones made stale) and a filter
    of every kind, ``keep`` leaves exactly the ranks whose movie ``accepts`` says pass,
    in order; ``accepts`` is SQL's comparison with NULL as false."""
    ranks = np.arange(1, len(movies) + 1, dtype=np.int64)
    encoded = encode_filter_columns(ranks, movies, len(movies) + 1)
    assert encoded is not None
    columns = FilterColumns(*encoded)
    written = data.draw(st.sets(st.sampled_from(ranks.tolist())))
    now = {rank: data.draw(movie_values) for rank in written}
    current = columns.with_current([(rank, *values) for rank, values in now.items()])
    values = {rank: now.get(rank, movies[rank - 1]) for rank in ranks.tolist()}
    asked = np.array(sorted(data.draw(st.sets(st.sampled_from(ranks.tolist())))), np.int64)
    expected = [rank for rank in asked.tolist() if wanted.accepts(*values[rank])]
    assert expected == current.keep(asked, wanted).tolist()


def test_accepts_follows_sql_null() -> None:
    """A movie without a year is in no year range, one without a rating under no rating
    floor; "all" genres needs every bit of the mask, "any" one."""
    assert not ColumnFilter(year_to=2000).accepts(None, 5.0, 10, "movie", 0)
    assert not ColumnFilter(min_rating=1.0).accepts(1999, None, 10, "movie", 0)
    assert ColumnFilter(min_votes=10).accepts(None, None, 10, "movie", 0)
    assert ColumnFilter(genre_mask=0b101).accepts(None, None, 0, "movie", 0b100)
    assert not ColumnFilter(genre_mask=0b101, all_genres=True).accepts(None, None, 0, "x", 0b100)
    assert not ColumnFilter(kind="short").accepts(None, None, 0, "movie", 0)


# Filtered searches of the sample: small matches (ranked in memory), broad ones (tiers
# from the title index), every filter, typos, dropped words, combinations.
FILTERED: list[list[tuple[str, str]]] = [
    [("q", "matrix"), ("year_from", "1999")],
    [("q", "matrix"), ("year_to", "1998")],
    [("q", "star wars"), ("genres", "Action"), ("year_from", "1977"), ("year_to", "1983")],
    [("q", "godfather"), ("min_rating", "8")],
    [("q", "godfather"), ("min_votes", "100000")],
    [("q", "love"), ("genres", "Drama,Comedy"), ("genres_mode", "all")],
    [("q", "love"), ("genres", "Drama,Comedy")],
    [("q", "love"), ("year_from", "1950"), ("year_to", "1950")],
    [("q", "night"), ("kind", "movie"), ("min_votes", "10")],
    [("q", "the"), ("genres", "Animation"), ("min_rating", "7.5")],
    [("q", "casablanca"), ("genres", "Romance")],
    [("q", "casablanca"), ("genres", "Documentary")],
    [("q", "matirx"), ("year_from", "1990")],
    [("q", "godfahter part"), ("min_votes", "1000")],
    [("q", "king kong"), ("year_to", "1950")],
    [("q", "king kong 1933"), ("genres", "Action")],
    [("q", "zzzzqqq"), ("genres", "Drama")],
    [("q", "star"), ("min_rating", "9.5"), ("offset", "2"), ("limit", "3")],
    [("q", "amelie"), ("year_from", "2001"), ("fields", "id,title,matched_title,highlights")],
]


def _without_filter_columns(engine: BlockingSearchEngine) -> BlockingSearchEngine:
    """The same engine, its hit rows without filter columns (filters by statement)."""
    inner = engine.engine
    assert isinstance(inner, SqliteSearchEngine)
    hit_rows = inner.snapshot.hit_rows
    assert hit_rows is not None and hit_rows.filters is not None
    inner.snapshot = replace(
        inner.snapshot, hit_rows=hit_rows.with_changes((), (), None)
    )  # fmt: skip
    return engine


def test_filtered_searches_of_the_sample_answer_as_the_title_index(sample_db: Path) -> None:
    """Every filtered search above answers (hits, total, exactness) what it answers with
    its filters in the statements; a small filtered match sends no statement at all."""
    statements: list[str] = []
    settings = settings_for(sample_db, db_read_pool_size=1)
    opened = open_blocking_engine(settings)
    other = _without_filter_columns(open_blocking_engine(settings))
    try:
        inner = opened.engine
        assert isinstance(inner, SqliteSearchEngine)
        with inner.pool.connection() as conn:
            conn.set_trace_callback(statements.append)
        statements.clear()
        hits = opened.search(parse_search([("q", "matrix"), ("year_from", "1999")])).hits
        assert [] == [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        assert ["The Matrix"] == [hit["title"] for hit in hits][:1]
        assert all(hit["year"] >= 1999 for hit in hits)
        answered = 0
        for params in FILTERED:
            query = parse_search(params)
            found, expected = opened.search(query), other.search(query)
            assert (expected.hits, expected.total, expected.total_is_exact) == (
                found.hits, found.total, found.total_is_exact
            ), params  # fmt: skip
            answered += bool(found.hits)
        assert len(FILTERED) - 3 == answered  # all but Documentary, zzzzqqq and the 9.5 floor
    finally:
        opened.close()
        other.close()


def test_every_movie_of_the_sample_has_its_stored_values(sample_db: Path) -> None:
    """The stored columns of each of the 58,788 movies pass exactly the filters its
    catalog row passes: its year, rating, votes, kind and genres as stored."""
    opened = open_blocking_engine(settings_for(sample_db))
    try:
        hit_rows = opened.snapshot.hit_rows
        assert hit_rows is not None and hit_rows.filters is not None
        columns = hit_rows.filters
        conn = sqlite3.connect(f"file:{sample_db}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                "SELECT search_rank, year, rating, votes, kind, genre_mask FROM movies "
                "ORDER BY search_rank"
            ).fetchall()
        finally:
            conn.close()
    finally:
        opened.close()
    assert 58_788 == len(rows)
    ranks = np.array([row[0] for row in rows], dtype=np.int64)
    for wanted in (
        ColumnFilter(year_from=1990, year_to=1999),
        ColumnFilter(min_rating=7.3),
        ColumnFilter(min_votes=1000),
        ColumnFilter(kind="movie"),
        ColumnFilter(genre_mask=0b110, all_genres=True),
        ColumnFilter(genre_mask=0b1001),
    ):
        expected = [row[0] for row in rows if wanted.accepts(*row[1:])]
        assert expected == columns.keep(ranks, wanted).tolist(), wanted
        assert len(expected) > 10, wanted  # a filter that keeps something
