"""Title postings stored at import and mapped by workers (search/postings_store.py,
search/stored_postings.py), with the writes since the import as a delta over them
(search/postings_delta.py): after any sequence of writes they answer what FTS5 answers,
and a catalog whose stored postings cannot be trusted falls back to FTS5 alone."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from written_catalog import import_small_catalog, write

from conftest import settings_for
from reelsearch.catalog import changes as changes_module
from reelsearch.catalog.documents import DeleteMovie, Operation, PutMovie
from reelsearch.catalog.records import MovieRecord
from reelsearch.catalog.titles import title_document
from reelsearch.config import Settings
from reelsearch.search import postings as postings_module
from reelsearch.search.backends import open_blocking_engine
from reelsearch.search.engine import BlockingSearchEngine
from reelsearch.search.postings import POSTINGS_MAX_MOVIES, TitlePostings
from reelsearch.search.query import parse_search
from reelsearch.search.stored_postings import POSTINGS_SQL
from reelsearch.search.word_store import file_checksum

NEW = MovieRecord(
    source_key="doc:1",
    title="Zorblax Quintessence",
    year=2024,
    votes=1234,
    genres=("Drama",),
    alt_titles=("Flurbo Quint",),
)


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    """The small titles imported into a private SQLite catalog (postings stored beside it)."""
    return import_small_catalog(tmp_path, _settings(tmp_path / "catalog.db"))


@pytest.fixture
def engine(catalog: Path) -> Iterator[BlockingSearchEngine]:
    opened = open_blocking_engine(_settings(catalog))
    yield opened
    opened.close()


def _settings(path: Path) -> Settings:
    return settings_for(path, title_postings_max_movies=POSTINGS_MAX_MOVIES)


def _write(engine: BlockingSearchEngine, catalog: Path, *operations: Operation) -> None:
    write(engine, _settings(catalog), *operations)


def _postings(engine: BlockingSearchEngine) -> TitlePostings:
    postings = engine.snapshot.postings
    assert postings is not None
    return postings


def _assert_as_fts5(catalog: Path, postings: TitlePostings, *more_words: str) -> None:
    """Every word of the title index (and ``more_words``) lists FTS5's rowids, a few
    prefixes too, and every movie's rank has its current title document."""
    conn = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
    try:
        terms = conn.execute("SELECT term FROM title_vocab WHERE term != char(57344)")
        for word in [*(term for (term,) in terms), *more_words]:
            expected = conn.execute(
                "SELECT rowid FROM title_fts WHERE title_fts MATCH ? ORDER BY rowid",
                ('"' + word + '"',),
            ).fetchall()
            assert [rank for (rank,) in expected] == postings.word(word).tolist(), word
        for prefix in ["t", "to", "sta", "zor", "ca"]:
            expected = conn.execute(
                "SELECT rowid FROM title_fts WHERE title_fts MATCH ? ORDER BY rowid",
                (f'"{prefix}"*',),
            ).fetchall()
            found = postings.prefix(prefix)
            assert found is not None
            assert [rank for (rank,) in expected] == found.tolist(), prefix
        movies = conn.execute("SELECT search_rank, norm_title, alt_norm_titles FROM movies")
        for rank, norm_title, alt_norm_titles in movies:
            assert title_document(norm_title, alt_norm_titles) == postings.document(rank)
    finally:
        conn.close()


def test_postings_follow_every_kind_of_write(engine: BlockingSearchEngine, catalog: Path) -> None:
    """Created, retitled, deleted (one of several alike titles), a deleted last rank taken
    again by a new movie, retitled then deleted: after each write the mapped postings
    with their delta list exactly FTS5's titles, and the mapping itself is kept."""
    arrays = _postings(engine).arrays
    _assert_as_fts5(catalog, _postings(engine))
    toy_story = MovieRecord(source_key="imdb:tt0000024", title="Toy Tale", year=1995)
    steps: list[tuple[Operation, ...]] = [
        (DeleteMovie("imdb:tt0000020"),),  # no votes: the last rank, which NEW then takes
        (PutMovie(NEW),),
        (PutMovie(toy_story),),
        (DeleteMovie("imdb:tt0000025"),),  # Toy Story 2, beside Toy Story 3
        (PutMovie(replace(NEW, source_key="doc:2", title="Second Zorblax", alt_titles=())),),
        (PutMovie(MovieRecord(source_key="imdb:tt0000029", title="Casablanca Nights")),),
        (DeleteMovie("imdb:tt0000029"), PutMovie(replace(toy_story, title="Toy Story"))),
    ]
    for operations in steps:
        _write(engine, catalog, *operations)
        postings = _postings(engine)
        assert arrays is postings.arrays, operations  # mapped once, not again per write
        _assert_as_fts5(catalog, postings, "zorblax", "tale", "nights", "casablanca")
    postings = _postings(engine)
    assert 30 == int(postings.word("flurbo")[0])  # the deleted movie's rank, taken again
    assert "untitled project" == postings.stored_document(30)
    assert [] == postings.word("tale").tolist()
    assert 2 == len(postings.word("zorblax"))
    assert ["Zorblax Quintessence", "Second Zorblax"] == [
        hit["title"] for hit in engine.search(parse_search([("q", "zorblax")])).hits
    ]


def test_pruned_change_records_leave_searches_to_fts5(
    engine: BlockingSearchEngine, catalog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once pruning drops change records from after the import, the delta cannot be known:
    no postings (FTS5 answers, logged), and searches still find what was written."""
    monkeypatch.setattr(changes_module, "MAX_CHANGE_RECORDS", 2)
    monkeypatch.setattr(changes_module, "PRUNE_EVERY", 2)
    for n in range(4):
        _write(engine, catalog, PutMovie(replace(NEW, source_key=f"doc:{n}", title=f"Qux {n}")))
    assert None is engine.snapshot.postings
    assert 4 == engine.search(parse_search([("q", "qux")])).total


def test_a_missing_file_is_rebuilt_before_any_write(catalog: Path) -> None:
    """A worker that finds the postings file gone rebuilds it from the titles, byte for
    byte (the checksum the catalog names), and maps it."""
    conn = sqlite3.connect(catalog)
    name, _, digest = conn.execute(POSTINGS_SQL).fetchone()[0].partition(" ")
    conn.close()
    path = catalog.parent / name
    path.unlink()
    opened = open_blocking_engine(_settings(catalog))
    try:
        assert opened.snapshot.postings is not None
        assert digest == file_checksum(path)
    finally:
        opened.close()


def test_a_missing_file_after_writes_leaves_searches_to_fts5(
    engine: BlockingSearchEngine, catalog: Path
) -> None:
    """After writes the titles are no longer the import's: a missing file is not rebuilt,
    the snapshot has no postings and searches read FTS5."""
    _write(engine, catalog, PutMovie(NEW))
    reference = engine.snapshot.stored_postings
    assert reference is not None
    (catalog.parent / reference.partition(" ")[0]).unlink()
    opened = open_blocking_engine(_settings(catalog))
    try:
        assert None is opened.snapshot.postings
        assert ["Zorblax Quintessence"] == [
            hit["title"] for hit in opened.search(parse_search([("q", "zorblax")])).hits
        ]
    finally:
        opened.close()


def test_a_catalog_naming_no_postings_has_none(catalog: Path) -> None:
    """A catalog imported before postings were stored (no ``title_postings`` in
    catalog_meta) has none: nothing is built at load."""
    conn = sqlite3.connect(catalog)
    with conn:
        conn.execute("DELETE FROM catalog_meta WHERE key = 'title_postings'")
    conn.close()
    opened = open_blocking_engine(_settings(catalog))
    try:
        assert None is opened.snapshot.postings
    finally:
        opened.close()


def test_postings_off_by_setting(catalog: Path) -> None:
    """``title_postings_max_movies`` below the catalog's size: no postings mapped."""
    opened = open_blocking_engine(settings_for(catalog, title_postings_max_movies=5))
    try:
        assert None is opened.snapshot.postings
    finally:
        opened.close()


def test_postings_on_by_default_up_to_the_measured_size() -> None:
    """The setting's default is the largest catalog measured with postings (decision 0033)."""
    assert POSTINGS_MAX_MOVIES == Settings().title_postings_max_movies == 1_000_000


def test_a_merged_prefix_is_remembered_within_its_byte_bound(
    engine: BlockingSearchEngine, catalog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prefix whose words' postings must be merged is merged once: the next search of
    it gets the same (read-only) set; one word's own postings are not kept (a view of
    the mapping already); the sets kept never pass ``PREFIX_CACHE_BYTES``, the least
    recently used going first; a write's new postings start with none (a set kept from
    before would miss the new title)."""
    monkeypatch.setattr(postings_module, "PREFIX_CACHE_BYTES", 64)  # sixteen ranks
    postings = _postings(engine)
    first = postings.prefix("t")  # 5 words
    assert first is not None
    assert [2, 6, 7, 9, 16, 17, 18, 23, 24, 26] == first.tolist()
    assert first is postings.prefix("t")
    assert not first.flags.writeable
    assert [7, 9, 17] == postings.prefix("to").tolist()  # "toy" alone: not kept
    assert ["t"] == list(postings._prefixes)
    assert [5, 7, 9, 16, 17, 28] == postings.prefix("st").tolist()  # 2 words: 10 + 6 ranks
    assert ["t", "st"] == list(postings._prefixes)
    assert 64 == postings._prefix_bytes
    postings.prefix("t")  # used again: "st" is now the least recent
    assert [19, 29] == postings.prefix("c").tolist()  # 2 more ranks: "st" goes
    assert ["t", "c"] == list(postings._prefixes)
    assert 48 == postings._prefix_bytes
    _write(engine, catalog, PutMovie(replace(NEW, source_key="doc:3", title="Tzorblax")))
    after = _postings(engine)
    assert [] == list(after._prefixes)
    found = after.prefix("t")
    assert found is not None
    assert 11 == len(found)
    assert set(first.tolist()) < set(found.tolist())
