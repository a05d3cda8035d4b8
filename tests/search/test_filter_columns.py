"""Filters tested in memory on the columns stored with the hit rows
(search/filter_columns.py): each filter keeps exactly the movies the statement's WHERE
keeps (NULL years and ratings in no range), a filtered search on the title postings
sends no statement and answers what the title index answers, and movies written since
the import are tested with their values now."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_hit_rows import selects, traced

from conftest import settings_for
from reelsearch.errors import InvalidRequest
from reelsearch.search.backends import open_blocking_engine
from reelsearch.search.engine import BlockingSearchEngine
from reelsearch.search.filter_columns import ColumnFilter, FilterColumns, encode_filter_columns
from reelsearch.search.filters import build_filters
from reelsearch.search.query import parse_search
from reelsearch.search.snapshot import CatalogSnapshot
from reelsearch.search.sqlite import SqliteSearchEngine

KINDS = ("movie", "tvSeries", "short")
NEW_KIND = "videoGame"  # a kind only movies written since the import have
GENRES = {f"g{bit}": (bit, f"G{bit}") for bit in range(30)}
# What build_filters reads of a snapshot: the catalog's kinds and genres.
CATALOG = cast(CatalogSnapshot, SimpleNamespace(kinds=frozenset((*KINDS, NEW_KIND)), genres=GENRES))


def values_of(kinds: tuple[str, ...]) -> st.SearchStrategy[tuple[Any, ...]]:
    """A movie's (year, rating, votes, kind, genre_mask), its kind one of ``kinds``."""
    return st.tuples(
        st.one_of(st.none(), st.integers(1890, 2030)),
        st.one_of(st.none(), st.floats(1.0, 10.0, allow_nan=False)),
        st.integers(0, 3_000_000),
        st.sampled_from(kinds),
        st.integers(0, (1 << 30) - 1),
    )


movie_values = values_of(KINDS)
filter_params = st.fixed_dictionaries(
    {},
    optional={
        "year_from": st.integers(1880, 2035).map(str),
        "year_to": st.integers(1880, 2035).map(str),
        "min_rating": st.decimals(0, 10, places=1).map(str),
        "min_votes": st.integers(0, 3_000_000).map(str),
        "kind": st.sampled_from((*KINDS, NEW_KIND)),
        "genres": st.lists(st.sampled_from(sorted(GENRES)), min_size=1, max_size=3).map(
            lambda names: ",".join([*names, names[0].upper()])  # one named twice
        ),
        "genres_mode": st.sampled_from(("any", "all")),
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(movie_values, min_size=1, max_size=60), filter_params, st.data())
def test_keep_keeps_what_the_statements_where_keeps(
    movies: list[tuple[Any, ...]], params: dict[str, str], data: st.DataObject
) -> None:
    """For any movies (some without a year or rating) stored at ranks 1..n, some written
    since the import (new values, a kind new since, ranks past the stored ones), and any
    filters a client may send, ``keep`` on the values ``build_filters`` makes leaves
    exactly the ranks its SQL keeps in SQLite, in order."""
    ranks = np.arange(1, len(movies) + 1, dtype=np.int64)
    encoded = encode_filter_columns(ranks, movies, len(movies) + 1)
    assert encoded is not None
    written = data.draw(st.sets(st.integers(1, len(movies) + 5)))
    now = {rank: data.draw(values_of((*KINDS, NEW_KIND))) for rank in written}
    columns = FilterColumns(*encoded).with_current([(r, *v) for r, v in now.items()])
    values = {**{rank: movies[rank - 1] for rank in ranks.tolist()}, **now}
    try:
        query = parse_search([("q", "x"), *params.items()])
    except InvalidRequest:  # year_from after year_to: refused before any search
        assume(False)
    filters = build_filters(CATALOG, query, text=True)
    assume(filters.sql)  # no filter: nothing to keep (the sets are used as they are)
    assert filters.columns is not None
    with closing(sqlite3.connect(":memory:")) as conn:
        conn.execute(
            "CREATE TABLE movies (search_rank INTEGER, year INTEGER, rating REAL, "
            "votes INTEGER, kind TEXT, genre_mask INTEGER)"
        )
        conn.executemany("INSERT INTO movies VALUES (?, ?, ?, ?, ?, ?)",
                         [(rank, *row) for rank, row in values.items()])  # fmt: skip
        expected = [
            rank
            for (rank,) in conn.execute(
                f"SELECT search_rank FROM movies AS m WHERE 1 = 1{filters.sql} "
                "ORDER BY search_rank",
                filters.params,
            )
        ]
    asked = np.array(sorted(values), dtype=np.int64)
    assert expected == columns.keep(asked, filters.columns).tolist()


def _passes(wanted: ColumnFilter, *movie: Any) -> bool:
    """Whether ``keep`` keeps one movie (year, rating, votes, kind, genre_mask) at rank 1."""
    encoded = encode_filter_columns(np.array([1]), [movie], 2)
    assert encoded is not None
    return [1] == FilterColumns(*encoded).keep(np.array([1], dtype=np.int64), wanted).tolist()


def test_keep_follows_sql_null() -> None:
    """A movie without a year is in no year range, one without a rating under no rating
    floor; "all" genres needs every bit of the mask, "any" one."""
    assert not _passes(ColumnFilter(year_to=2000), None, 5.0, 10, "movie", 0)
    assert not _passes(ColumnFilter(min_rating=1.0), 1999, None, 10, "movie", 0)
    assert _passes(ColumnFilter(min_votes=10), None, None, 10, "movie", 0)
    assert _passes(ColumnFilter(genre_mask=0b101), None, None, 0, "movie", 0b100)
    assert not _passes(ColumnFilter(genre_mask=0b101, all_genres=True), None, None, 0, "x", 0b100)
    assert not _passes(ColumnFilter(kind="short"), None, None, 0, "movie", 0)


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
    assert hit_rows is not None and hit_rows.filter_columns is not None
    inner.snapshot = replace(
        inner.snapshot, hit_rows=hit_rows.with_changes((), (), None)
    )  # fmt: skip
    return engine


def test_filtered_searches_of_the_sample_answer_as_the_title_index(sample_db: Path) -> None:
    """Every filtered search above answers (hits, total, exactness) what it answers with
    its filters in the statements; a small filtered match sends no statement at all."""
    settings = settings_for(sample_db, db_read_pool_size=1)
    opened = open_blocking_engine(settings)
    other = _without_filter_columns(open_blocking_engine(settings))
    try:
        statements = traced(opened)
        hits = opened.search(parse_search([("q", "matrix"), ("year_from", "1999")])).hits
        assert [] == selects(statements)
        assert ["The Matrix"] == [hit["title"] for hit in hits][:1]
        assert all(hit["year"] >= 1999 for hit in hits)
        answered, in_memory = 0, []
        for params in FILTERED:
            query = parse_search(params)
            statements.clear()
            found = opened.search(query)
            if not selects(statements):
                in_memory.append(params[0][1])
            expected = other.search(query)
            assert (expected.hits, expected.total, expected.total_is_exact) == (
                found.hits, found.total, found.total_is_exact
            ), params  # fmt: skip
            answered += bool(found.hits)
        assert len(FILTERED) - 3 == answered  # all but Documentary, zzzzqqq and the 9.5 floor
        # "night" is broad, but one word: its exact titles come from the postings too
        # (test_exact_tier.py). Not: pages showing an alternate title a hit matched
        # ("love" among dramas or comedies, "the" in animation: the title as displayed
        # is read) and a year among the words ("king kong 1933").
        assert [
            "matrix", "matrix", "star wars", "godfather", "godfather", "love", "love", "night",
            "casablanca", "casablanca", "matirx", "godfahter part", "king kong", "zzzzqqq",
            "star", "amelie",
        ] == in_memory, " | ".join(in_memory)  # fmt: skip
    finally:
        opened.close()
        other.close()


def test_every_movie_of_the_sample_has_its_stored_values(sample_db: Path) -> None:
    """The stored columns of each of the 58,788 movies pass exactly the filters its
    catalog row passes, as the catalog's own WHERE says: its year, rating, votes, kind
    and genres as stored."""
    opened = open_blocking_engine(settings_for(sample_db))
    try:
        hit_rows = opened.snapshot.hit_rows
        assert hit_rows is not None and hit_rows.filter_columns is not None
        columns = hit_rows.filter_columns
    finally:
        opened.close()
    cases = [
        (ColumnFilter(year_from=1990, year_to=1999), "m.year >= 1990 AND m.year <= 1999"),
        (ColumnFilter(min_rating=7.3), "m.rating >= 7.3"),
        (ColumnFilter(min_votes=1000), "m.votes >= 1000"),
        (ColumnFilter(kind="movie"), "m.kind = 'movie'"),
        (ColumnFilter(genre_mask=0b110, all_genres=True), "(m.genre_mask & 6) = 6"),
        (ColumnFilter(genre_mask=0b1001), "(m.genre_mask & 9) != 0"),
    ]
    with closing(sqlite3.connect(f"file:{sample_db}?mode=ro", uri=True)) as conn:
        ranks = np.array(
            [rank for (rank,) in conn.execute("SELECT search_rank FROM movies ORDER BY 1")],
            dtype=np.int64,
        )
        assert 58_788 == len(ranks)
        for wanted, where in cases:
            expected = [
                rank
                for (rank,) in conn.execute(
                    f"SELECT search_rank FROM movies AS m WHERE {where} ORDER BY 1"
                )
            ]
            assert expected == columns.keep(ranks, wanted).tolist(), wanted
            assert len(expected) > 10, wanted  # a filter that keeps something
