"""Tier 0 (the exact title) found from the title postings (``RankSets.exact_rows``):
the rows ``m.word_key = ?`` reads, filters and writes since the import included, so a
broad one-word search ("ma", "the", typed on the way to a title) sends no statement."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from test_hit_rows import selects, traced
from written_catalog import import_small_catalog, write

from conftest import settings_for
from reelsearch.catalog.documents import DeleteMovie, PutMovie
from reelsearch.catalog.records import MovieRecord
from reelsearch.search.backends import open_blocking_engine
from reelsearch.search.engine import BlockingSearchEngine
from reelsearch.search.filters import build_filters
from reelsearch.search.normalize import word_key
from reelsearch.search.postings import POSTINGS_MAX_MOVIES, primary_title_lengths
from reelsearch.search.postings_store import PostingArrays
from reelsearch.search.query import parse_search
from reelsearch.search.rank_sets import RankSets
from reelsearch.search.sqlite import SqliteSearchEngine

# One-word searches whose matches are too many to rank whole: tier 0 and the popular rest.
BROAD_WORDS = ("ma", "the", "love", "man", "night", "de", "star", "la", "lo", "b")
TIER_0_SQL = (
    "SELECT 0, m.search_rank, m.norm_title FROM movies AS m WHERE m.word_key = ?{filters} "
    "ORDER BY m.search_rank LIMIT ?"
)


def _sets(
    engine: BlockingSearchEngine, filter_params: tuple[tuple[str, str], ...] = ()
) -> RankSets:
    """A search's sets over ``engine``'s postings, with the filters of ``filter_params``."""
    inner = engine.engine
    assert isinstance(inner, SqliteSearchEngine)
    snapshot = inner.snapshot
    query = parse_search([("q", "matrix"), *filter_params])
    match = inner.tiered.pages.match(snapshot, inner.tiered.plan(snapshot, query))
    filters = build_filters(snapshot, query, text=True)
    sets = inner.tiered.pages.rank_sets(snapshot, match, filters)
    assert sets is not None
    return sets


def _statement_rows(
    catalog: Path, key: str, limit: int, filters_sql: str = "", params: tuple[object, ...] = ()
) -> list[tuple[int, int, str]]:
    conn = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
    try:
        sql = TIER_0_SQL.format(filters=filters_sql)
        return [tuple(row) for row in conn.execute(sql, (key, *params, limit))]  # type: ignore[misc]
    finally:
        conn.close()


def _keys(catalog: Path, every: int = 1) -> list[str]:
    """The word key of every ``every``-th movie's title, and of each title word alone."""
    conn = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
    try:
        titles = [title for (title,) in conn.execute("SELECT norm_title FROM movies")][::every]
    finally:
        conn.close()
    words = {word for title in titles for word in title.split()}
    return sorted(({word_key(title) for title in titles} | words) - {""})


@pytest.fixture(scope="module")
def sample(sample_db: Path) -> Iterator[BlockingSearchEngine]:
    opened = open_blocking_engine(settings_for(sample_db, db_read_pool_size=1))
    yield opened
    opened.close()


def test_primary_title_lengths_are_the_catalogs(
    sample: BlockingSearchEngine, sample_db: Path
) -> None:
    """Found from the documents' bytes, each rank's primary title length is its
    norm_title's in UTF-8, for all 58,788 movies (alternate titles after it or not)."""
    postings = sample.snapshot.postings
    assert postings is not None
    lengths = primary_title_lengths(postings.arrays)
    conn = sqlite3.connect(f"file:{sample_db}?mode=ro", uri=True)
    rows = conn.execute("SELECT search_rank, norm_title, alt_norm_titles FROM movies").fetchall()
    conn.close()
    assert 58_788 == len(rows)
    assert 223 == sum(1 for *_, alternates in rows if alternates)  # both kinds are here
    assert {rank: len(title.encode()) for rank, title, _ in rows} == {
        rank: int(lengths[rank]) for rank, _, _ in rows
    }


def test_exact_rows_are_the_word_key_statements_rows(
    sample: BlockingSearchEngine, sample_db: Path
) -> None:
    """For the key of every 5th title of the sample and every word of those titles,
    alone and under filters, the postings give the rows the statement reads, in order."""
    plain = _sets(sample)
    filter_params = (("year_from", "1990"), ("genres", "Drama"))
    filtered = _sets(sample, filter_params)
    query = parse_search([("q", "matrix"), *filter_params])
    filters = build_filters(sample.snapshot, query, text=True)
    found = 0
    for key in _keys(sample_db, every=5):
        words = key.split()
        expected = _statement_rows(sample_db, key, 10)
        assert expected == plain.exact_rows(key, words, 10), key
        expected_filtered = _statement_rows(sample_db, key, 3, filters.sql, filters.params)
        assert expected_filtered == filtered.exact_rows(key, words, 3), key
        found += len(expected)
    assert found > 12_000  # most keys are some title's


def test_broad_one_word_searches_send_no_statement(
    sample: BlockingSearchEngine, sample_db: Path
) -> None:
    """ "ma", "the", "love"...: their matches come from the postings, tier 0 too; no
    statement reaches SQLite, and each answers what the title index answers (the
    postings turned off), page, total and highlights."""
    statements = traced(sample)
    without = open_blocking_engine(settings_for(sample_db, title_postings_max_movies=0))
    try:
        for word in BROAD_WORDS:
            # Highlights and matched_title left out: an alternate title shown is read.
            lean = parse_search([("q", word), ("limit", "20"), ("fields", "id,title,year")])
            statements.clear()
            assert 20 == len(sample.search(lean).hits), word
            assert [] == selects(statements), word
            query = parse_search([("q", word), ("limit", "20")])
            assert without.search(query) == sample.search(query), word
    finally:
        without.close()
    exact = sample.search(parse_search([("q", "love")])).hits[0]
    assert "Love" == exact["title"]  # tier 0 first, before more popular titles


def test_exact_rows_follow_writes(tmp_path: Path) -> None:
    """Writes since the import: movies created with an exact title (ranks past the stored
    arrays), one retitled to the same key in another order, imported movies retitled to
    a key of another length (their stored primary length is the import's) and to another
    title's key, imported and written movies deleted. After each write the rows are the
    statement's."""
    settings = settings_for(tmp_path / "catalog.db", title_postings_max_movies=POSTINGS_MAX_MOVIES)
    catalog = import_small_catalog(tmp_path, settings)
    engine = open_blocking_engine(settings)
    try:
        keys = [*_keys(catalog), "casablanca nights", "psycho returns", "returns"]
        steps = [
            PutMovie(MovieRecord(source_key="doc:1", title="Casablanca", year=2030, votes=5)),
            PutMovie(MovieRecord(source_key="doc:2", title="Nights Casablanca", year=2031)),
            PutMovie(MovieRecord(source_key="doc:2", title="Casablanca Nights", year=2031)),
            PutMovie(MovieRecord(source_key="imdb:tt0000012", title="Psycho Returns", year=1960)),
            PutMovie(MovieRecord(source_key="imdb:tt0000014", title="Toy Story", year=1995)),
            DeleteMovie("imdb:tt0000013"),
            DeleteMovie("doc:1"),
        ]
        for operation in steps:
            write(engine, settings, operation)
            sets = _sets(engine)
            for key in keys:
                assert _statement_rows(catalog, key, 10) == sets.exact_rows(key, key.split(), 10), (
                    operation,
                    key,
                )
        sets = _sets(engine)
        # The one written movie left holds the key in another order than typed.
        found = sets.exact_rows("casablanca nights", ["nights", "casablanca"], 5)
        assert ["casablanca nights"] == [title for _, _, title in found or []]
        assert [] == sets.exact_rows("psycho", ["psycho"], 5)  # one retitled, one deleted
        assert ["psycho returns"] == [
            t for _, _, t in sets.exact_rows("psycho returns", ["psycho", "returns"], 5) or []
        ]
        found = sets.exact_rows("story toy", ["toy", "story"], 5)
        assert ["toy story", "toy story"] == [title for _, _, title in found or []]
    finally:
        engine.close()


def test_primary_title_lengths_of_odd_documents() -> None:
    """An empty document, an empty primary title before alternates, a primary title past
    the 16-bit cap, one with alternates and a non-ASCII one: lengths 0, 0, the cap, the
    primary's bytes only, its UTF-8 bytes."""
    documents = ["", " \ue000 alt", "a" * 70_000, "the b \ue000 x \ue000 y", "léon"]
    data = "".join(documents).encode()
    offsets = np.cumsum([0, *(len(document.encode()) for document in documents)])
    arrays = PostingArrays(
        {"title_offsets": offsets.astype("<i8"), "title_bytes": np.frombuffer(data, "u1")},
        data,
        0,
        "",
    )
    assert [0, 0, 0xFFFF, 5, 5] == primary_title_lengths(arrays).tolist()
