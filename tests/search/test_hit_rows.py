"""Every movie's hit row, stored at import and mapped by workers (search/hit_rows.py): a
page's rows come from it without a statement, each exactly the row the statement reads;
the rows of movies written since the import are read by statement, so no answer is older
than its snapshot; a file that cannot be trusted is not used."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import marshal
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from written_catalog import import_small_catalog, write

from conftest import copy_catalog, settings_for
from reelsearch.catalog import changes as changes_module
from reelsearch.catalog.documents import DeleteMovie, Operation, PutMovie
from reelsearch.catalog.records import MovieRecord
from reelsearch.search import rank_sets
from reelsearch.search.backends import open_blocking_engine
from reelsearch.search.columns import COLUMNS, SEARCH_RANK
from reelsearch.search.engine import BlockingSearchEngine
from reelsearch.search.hit_rows import FORMAT, HIT_ROWS_SQL, MAGIC, HitRows
from reelsearch.search.query import parse_search
from reelsearch.search.sqlite import SqliteSearchEngine
from reelsearch.search.word_store import checksum, encode_sections, parse_sections

NEW = MovieRecord(source_key="doc:1", title="Zorblax Quintessence", year=2024, votes=1234)
# Toy Story as the small catalog has it, rated and voted otherwise: the title is the same,
# so the title postings have nothing to change, but its hit row does.
TOY_STORY = MovieRecord(
    source_key="imdb:tt0000024",
    title="Toy Story",
    year=1995,
    runtime_min=81,
    rating=2.5,
    votes=7,
    genres=("Animation", "Adventure", "Comedy"),
)


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    """The small titles imported into a private SQLite catalog (hit rows stored beside it)."""
    return import_small_catalog(tmp_path, settings_for(tmp_path / "catalog.db"))


@pytest.fixture
def engine(catalog: Path) -> Iterator[BlockingSearchEngine]:
    """An engine on ``catalog``, its snapshot mapping the catalog's hit rows."""
    opened = open_blocking_engine(settings_for(catalog))
    yield opened
    opened.close()


def _write(
    engine: BlockingSearchEngine, catalog: Path, *operations: Operation, reload: bool = True
) -> None:
    write(engine, settings_for(catalog), *operations, reload=reload)


def _rank_of(catalog: Path, source_key: str) -> int:
    conn = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
    try:
        return int(
            conn.execute(
                "SELECT search_rank FROM movies WHERE source_key = ?", (source_key,)
            ).fetchone()[0]
        )
    finally:
        conn.close()


def _hit_rows(engine: BlockingSearchEngine) -> HitRows:
    rows = engine.snapshot.hit_rows
    assert rows is not None
    return rows


def _statement_rows(catalog: Path) -> dict[int, tuple[Any, ...]]:
    """rank -> the row ``rows_by_rank``'s statement reads, for every movie now."""
    conn = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
    try:
        rows = conn.execute(f"SELECT {COLUMNS} FROM movies AS m").fetchall()
    finally:
        conn.close()
    return {row[SEARCH_RANK]: row for row in rows}


def _filled(rows: HitRows, ranks: list[int]) -> dict[int, Any]:
    known: dict[int, Any] = {}
    rows.fill(ranks, known)
    return known


def _without_hit_rows(engine: BlockingSearchEngine) -> BlockingSearchEngine:
    """The same engine with its snapshot's hit rows dropped (every page by statement)."""
    inner = engine.engine
    assert isinstance(inner, SqliteSearchEngine)
    inner.snapshot = replace(inner.snapshot, hit_rows=None)
    return engine


def test_every_stored_row_is_the_row_the_statement_reads(sample_db: Path) -> None:
    """On the sample, the mapped row of each of the 58,788 movies is the statement's,
    value for value and type for type; a rank past the import's is left out."""
    opened = open_blocking_engine(settings_for(sample_db))
    try:
        expected = _statement_rows(sample_db)
        found = _filled(_hit_rows(opened), [*expected, max(expected) + 1])
    finally:
        opened.close()
    assert 58_788 == len(expected)
    assert expected == found
    assert all(
        [type(v) for v in expected[rank]] == [type(v) for v in found[rank]] for rank in expected
    )


def traced(engine: BlockingSearchEngine) -> list[str]:
    """The list SQLite appends every statement ``engine`` sends to (it must have a single
    pooled connection)."""
    inner = engine.engine
    assert isinstance(inner, SqliteSearchEngine)
    statements: list[str] = []
    with inner.pool.connection() as conn:
        conn.set_trace_callback(statements.append)
    return statements


def selects(statements: list[str]) -> list[str]:
    """The reads among ``statements`` (BEGIN and COMMIT left out)."""
    return [s for s in statements if s.lstrip().upper().startswith("SELECT")]


def test_a_text_search_sends_no_statement_and_answers_as_without(sample_db: Path) -> None:
    """With the title postings and the hit rows mapped, "matrix" reads no statement on its
    connection, and every bench-like search answers what the statement path answers."""
    settings = settings_for(sample_db, db_read_pool_size=1)
    opened = open_blocking_engine(settings)
    other = _without_hit_rows(open_blocking_engine(settings))
    try:
        statements = traced(opened)
        hits = opened.search(parse_search([("q", "matrix")])).hits
        assert [] == selects(statements)
        assert "The Matrix" == hits[0]["title"]
        for params in (
            [("q", "matrix")],
            [("q", "godfater part 2")],
            [("q", "the"), ("offset", "40"), ("limit", "20")],
            [("q", "star"), ("genres", "Drama"), ("year_from", "1990")],
            [("q", "love"), ("sort", "-rating")],
            [("q", "amelie poulain"), ("fields", "id,title,matched_title,highlights")],
        ):
            query = parse_search(params)
            assert other.search(query) == opened.search(query), params
    finally:
        opened.close()
        other.close()


def test_rows_of_written_movies_are_read_by_statement(
    engine: BlockingSearchEngine, catalog: Path
) -> None:
    """After each write (a delete of the last rank, a create that takes that rank, a
    rating changed under the same title, a second create, a retitle), every row the
    mapped file still gives is the statement's, the written movies' ranks are left to
    the statement, the file stays mapped once, and a search shows the movie as written."""
    mapped = _hit_rows(engine)
    last = _rank_of(catalog, "imdb:tt0000020")  # no votes: the last rank
    steps: list[tuple[Operation, ...]] = [
        (DeleteMovie("imdb:tt0000020"),),
        (PutMovie(NEW),),  # takes the deleted movie's rank
        (PutMovie(TOY_STORY),),
        (PutMovie(replace(NEW, source_key="doc:2", title="Second Zorblax")),),
        (PutMovie(MovieRecord(source_key="imdb:tt0000029", title="Casablanca Nights")),),
    ]
    written: set[str] = set()
    for operations in steps:
        _write(engine, catalog, *operations)
        written.update(operation.source_key for operation in operations)
        rows = _hit_rows(engine)
        assert mapped.same_mapping(rows), operations  # the file mapped once, not per write
        expected = _statement_rows(catalog)
        found = _filled(rows, sorted(expected))
        assert {rank: expected[rank] for rank in found} == found, operations
        left = {row[-1] for rank, row in expected.items() if rank not in found}
        assert written - {"imdb:tt0000020"} == left, operations
    assert last == _rank_of(catalog, "doc:1")
    toy = engine.search(parse_search([("q", "toy story"), ("limit", "1")])).hits[0]
    assert ("Toy Story", 2.5, 7) == (toy["title"], toy["rating"], toy["votes"])  # as written
    rated = engine.search(parse_search([("q", "toy story"), ("sort", "rating")])).hits[0]
    assert ("Toy Story", 2.5, 7) == (rated["title"], rated["rating"], rated["votes"])
    assert ["Casablanca Nights"] == [
        hit["title"] for hit in engine.search(parse_search([("q", "casablanca")])).hits
    ]


def test_pruned_change_records_leave_every_row_to_the_statement(
    engine: BlockingSearchEngine,
    catalog: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Once pruning drops change records from after the import, which rows changed cannot
    be known: no hit rows (logged), and searches show what was written."""
    monkeypatch.setattr(changes_module, "MAX_CHANGE_RECORDS", 2)
    monkeypatch.setattr(changes_module, "PRUNE_EVERY", 2)
    for n in range(4):
        _write(engine, catalog, PutMovie(replace(TOY_STORY, votes=10 + n)))
    assert None is engine.snapshot.hit_rows
    assert "hit rows not used: the change records since the import were pruned" in caplog.text
    hits = engine.search(parse_search([("q", "toy story"), ("limit", "1"), ("sort", "votes")]))
    assert [("Toy Story", 13)] == [(hit["title"], hit["votes"]) for hit in hits.hits]


def _reference(catalog: Path) -> str:
    conn = sqlite3.connect(catalog)
    try:
        return str(conn.execute(HIT_ROWS_SQL).fetchone()[0])
    finally:
        conn.close()


def test_a_damaged_file_is_not_used(catalog: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A file whose checksum is not the one the catalog names is not mapped (logged):
    pages read their rows by statement and answer as before."""
    path = catalog.parent / _reference(catalog).partition(" ")[0]
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    opened = open_blocking_engine(settings_for(catalog))
    try:
        assert None is opened.snapshot.hit_rows
        assert "hit rows not used" in caplog.text
        assert ["Casablanca"] == [
            hit["title"] for hit in opened.search(parse_search([("q", "casablanca")])).hits
        ]
    finally:
        opened.close()


def test_a_file_another_marshal_wrote_is_not_used(
    catalog: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A file written by a Python whose ``marshal`` format differs from this one's is not
    loaded: its bytes might read as other values."""
    monkeypatch.setattr(marshal, "version", marshal.version + 1)
    opened = open_blocking_engine(settings_for(catalog))
    try:
        assert None is opened.snapshot.hit_rows
        assert f"holds ({FORMAT}, 1, {marshal.version - 1}, " in caplog.text
        assert 1 == opened.search(parse_search([("q", "casablanca")])).total
    finally:
        opened.close()


def test_a_file_of_the_last_release_gives_rows_and_no_filter_columns(catalog: Path) -> None:
    """A format 1 file (the release before filter columns) is still mapped: pages take
    its rows, and filters go to the catalog's statements; answers are the same."""
    path = catalog.parent / _reference(catalog).partition(" ")[0]
    mapped = path.read_bytes()
    header, sections = parse_sections(mapped, path, MAGIC)  # type: ignore[arg-type]
    fields = {key: header[key] for key in ("catalog_version", "marshal_version", "columns")}
    parts = encode_sections(
        MAGIC,
        {"format": 1, **fields},
        {name: sections[name] for name in ("row_offsets", "row_bytes")},
        {"row_offsets": "<i8", "row_bytes": "u1"},
    )
    path.write_bytes(b"".join(parts))
    with closing(sqlite3.connect(catalog)) as conn, conn:
        conn.execute(
            "UPDATE catalog_meta SET value = ? WHERE key = 'hit_rows'",
            (f"{path.name} {checksum(parts)}",),
        )
    opened = open_blocking_engine(settings_for(catalog))
    try:
        rows = _hit_rows(opened)
        assert None is rows.filter_columns
        expected = _statement_rows(catalog)
        assert expected == _filled(rows, sorted(expected))
        toy = opened.search(parse_search([("q", "toy"), ("year_from", "1990")])).hits
        assert "Toy Story" == toy[0]["title"]
    finally:
        opened.close()


def test_a_catalog_naming_no_hit_rows_reads_them_by_statement(catalog: Path) -> None:
    """A catalog imported before hit rows were stored (no ``hit_rows`` in catalog_meta)
    has none, and answers the same."""
    conn = sqlite3.connect(catalog)
    with conn:
        conn.execute("DELETE FROM catalog_meta WHERE key = 'hit_rows'")
    conn.close()
    opened = open_blocking_engine(settings_for(catalog))
    try:
        assert None is opened.snapshot.hit_rows
        assert ["Casablanca"] == [
            hit["title"] for hit in opened.search(parse_search([("q", "casablanca")])).hits
        ]
    finally:
        opened.close()


def test_a_filtered_page_answers_from_the_snapshot_until_the_reload(
    engine: BlockingSearchEngine, catalog: Path
) -> None:
    """A small filtered match is filtered in memory (search/filter_columns.py), so between
    a write and the snapshot's reload it answers from the snapshot, as an unfiltered one
    does: its sets, filter columns and rows are the import's. After the reload it shows
    the movies as written: a created movie's genre and a retitled movie's year are
    tested with their values now. (A page that read the catalog meanwhile: the sample's
    broad pages below.)"""
    version = engine.snapshot.version
    _write(engine, catalog, DeleteMovie("imdb:tt0000020"), reload=False)
    _write(engine, catalog, PutMovie(replace(NEW, genres=("Drama",))), reload=False)
    _write(engine, catalog, PutMovie(replace(TOY_STORY, title="Toy Tale", year=1985)), reload=False)
    assert version == engine.snapshot.version  # not reloaded

    def titles(*params: tuple[str, str]) -> list[str]:
        return [hit["title"] for hit in engine.search(parse_search(list(params))).hits]

    assert [] == titles(("q", "zorblax"), ("genres", "Drama"))
    assert "Toy Story" == titles(("q", "toy story"), ("year_from", "1990"))[0]
    assert engine.refresh_if_changed()
    assert ["Zorblax Quintessence"] == titles(("q", "zorblax"), ("genres", "Drama"))
    assert [] == titles(("q", "zorblax"), ("genres", "Comedy"))
    assert "Toy Tale" not in titles(("q", "toy"), ("year_from", "1990"), ("limit", "50"))
    assert ["Toy Tale"] == titles(("q", "tale"), ("year_to", "1985"))
    assert "Casablanca" == titles(("q", "casablanca"))[0]


# Broad, with preferred tiers: read from the title index when the postings leave them to it
# (``_tiers_from_the_index``; they find them alone otherwise: test_tier_rows.py).
BROAD = parse_search([("q", "the love"), ("genres", "Drama"), ("limit", "5")])


def _tiers_from_the_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """No title may be tested for a phrase in memory: a broad search's phrase tiers are
    then read from the title index, whose statement reads the catalog."""
    monkeypatch.setattr(rank_sets, "MAX_PHRASE_CANDIDATES", 0)


def _sample_copy(sample_db: Path, tmp_path: Path) -> Path:
    """A private copy of the imported sample with the files beside it."""
    path = tmp_path / "catalog" / sample_db.name  # the name catalog_meta's files have
    path.parent.mkdir()
    copy_catalog(sample_db, path)
    return path


def _rows_read(engine: BlockingSearchEngine, statements: list[str]) -> list[dict[str, Any]]:
    """``BROAD``'s hits; ``statements`` then holds whether its page read rows by statement
    (the engine has one pooled connection, traced)."""
    inner = engine.engine
    assert isinstance(inner, SqliteSearchEngine)
    with inner.pool.connection() as conn:
        conn.set_trace_callback(statements.append)
    statements.clear()
    return engine.search(BROAD).hits


def _by_rank(statements: list[str]) -> list[str]:
    return [s for s in statements if "WHERE m.search_rank IN (" in s]


def test_a_broad_page_read_from_the_catalog_before_the_reload_shows_its_rows(
    sample_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broad filtered search ("the love" among dramas) reads its ranks from the title index's
    tiers, without their rows, which it takes from the mapped file. Between a retitle and
    the snapshot's reload, the retitled movie on that page shows its new title (upper
    case and a "!": the same words, so the same place): a page that read the catalog
    takes the mapped rows only while the catalog is at the snapshot's version."""
    _tiers_from_the_index(monkeypatch)
    path = _sample_copy(sample_db, tmp_path)
    opened = open_blocking_engine(settings_for(path, db_read_pool_size=1))
    statements: list[str] = []
    try:
        assert opened.snapshot.hit_rows is not None
        before = _rows_read(opened, statements)
        assert [] == _by_rank(statements)  # the rows came from the file
        top = before[0]
        retitled = MovieRecord(
            source_key=f"{top['source']}:{top['source_id']}",
            title=f"{top['title'].upper()}!",
            year=top["year"],
            runtime_min=top["runtime_min"],
            rating=top["rating"],
            votes=top["votes"],
            genres=tuple(top["genres"]),
        )
        _write(opened, path, PutMovie(retitled), reload=False)
        after = _rows_read(opened, statements)
        assert 1 == len(_by_rank(statements))  # now by statement
        assert 1 == opened.snapshot.version  # the snapshot of the import, not reloaded
    finally:
        opened.close()
    assert [hit["id"] for hit in before] == [hit["id"] for hit in after]
    assert [f"{top['title'].upper()}!"] + [hit["title"] for hit in before[1:]] == [
        hit["title"] for hit in after
    ]


def test_another_file_of_the_same_version_is_not_read_through_the_mapped_rows(
    sample_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another catalog file moved to the path may have the snapshot's version (two fresh
    imports are both version 1) and other movies at each rank. Until the reload, a page
    that read it takes its rows from it, not from the file the snapshot mapped: here the
    catalog names another hit rows file and a movie's title differs, the version is the
    same."""
    _tiers_from_the_index(monkeypatch)
    path = _sample_copy(sample_db, tmp_path)
    opened = open_blocking_engine(settings_for(path, db_read_pool_size=1))
    statements: list[str] = []
    try:
        top = _rows_read(opened, statements)[0]
        with closing(sqlite3.connect(path)) as conn, conn:
            conn.execute("UPDATE movies SET title = 'Another Movie' WHERE id = ?", (top["id"],))
            conn.execute(
                "UPDATE catalog_meta SET value = 'sample.db.rows-1 another' WHERE key = 'hit_rows'"
            )
        hits = _rows_read(opened, statements)
        assert 1 == len(_by_rank(statements))
    finally:
        opened.close()
    assert (top["id"], "Another Movie") == (hits[0]["id"], hits[0]["title"])
