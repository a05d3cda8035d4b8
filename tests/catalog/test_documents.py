"""Catalog writes of a few movies (catalog/documents*.py, catalog/changes.py) on each backend:
validation naming fields, idempotency, change records, concurrent writers, a write during
an import, the word overlay that lets searches find new words, and `import jsonl`."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import asyncio
import itertools
import mmap
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import SMALL_AKAS, SMALL_TITLES, settings_for, write_imdb
from reelsearch.catalog import changes as changes_module
from reelsearch.catalog.changes import ChangesUnavailable, MovieChange, changes_since
from reelsearch.catalog.documents import (
    DeleteMovie,
    InvalidDocument,
    PutMovie,
    movie_record,
    operation_of_line,
)
from reelsearch.catalog.importers.imdb import import_imdb
from reelsearch.catalog.importers.jsonl import import_jsonl
from reelsearch.catalog.records import MovieRecord
from reelsearch.catalog.writes import CatalogWriter
from reelsearch.config import Settings
from reelsearch.errors import DatabaseUnavailable, ImportFailed
from reelsearch.search.backends import open_blocking_engine
from reelsearch.search.engine import BlockingSearchEngine
from reelsearch.search.postings import POSTINGS_MAX_MOVIES
from reelsearch.search.query import parse_autocomplete, parse_search

_names = itertools.count()


@pytest.fixture
def writable(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Settings:
    """A private catalog of the small titles on each backend, imported (so its word index is
    stored beside it and writes are merged over it, as in production)."""
    if backend == "sqlite":
        # With title postings (off by default): writes must reach them too.
        settings = settings_for(
            tmp_path / "catalog.db", title_postings_max_movies=POSTINGS_MAX_MOVIES
        )
    else:
        create: Callable[[str], str] = request.getfixturevalue("postgres_databases")
        settings = Settings(database_url=create(f"docs{next(_names)}"), search_deadline_ms=10_000)
    import_imdb(settings, list(write_imdb(tmp_path / "dump", SMALL_TITLES, SMALL_AKAS).values()))
    return settings


@pytest.fixture
def engine(writable: Settings) -> Iterator[BlockingSearchEngine]:
    """A search engine on the writable catalog (its poller is the test: refresh_if_changed)."""
    opened = open_blocking_engine(writable)
    yield opened
    opened.close()


def _write(engine: BlockingSearchEngine, settings: Settings, *operations: object) -> object:
    writer = CatalogWriter(settings)
    return engine.run(lambda _: writer.write(list(operations)))  # type: ignore[arg-type]


def _titles(engine: BlockingSearchEngine, q: str) -> list[str]:
    return [hit["title"] for hit in engine.search(parse_search([("q", q)])).hits]


NEW = MovieRecord(
    source_key="doc:1",
    title="Zorblax Quintessence",
    year=2024,
    runtime_min=99,
    rating=7.5,
    votes=1234,
    genres=("Drama", "Mockumentary"),
    alt_titles=("Flurbo Quint",),
)


# -- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "param", "message"),
    [
        ({}, "title", "title is required"),
        ({"title": "  "}, "title", "title must be a non-empty string"),
        ({"title": "X", "year": "1999"}, "year", "year must be a whole number from 1800"),
        ({"title": "X", "year": 1500}, "year", "year must be from 1800 to 2200, not 1500"),
        ({"title": "X", "rating": 11}, "rating", "rating must be from 0 to 10, not 11"),
        ({"title": "X", "votes": -1}, "votes", "votes must be from 0"),
        ({"title": "X", "votes": True}, "votes", "votes must be a whole number"),
        ({"title": "X", "genres": "Drama"}, "genres", "genres must be a list of strings"),
        ({"title": "X", "genres": ["A,B"]}, "genres", "no commas"),
        ({"title": "X", "kind": "tv series"}, "kind", "kind must be a word"),
        ({"title": "X", "alt_titles": [""]}, "alt_titles", "must not hold empty strings"),
        ({"title": "X", "colour": "red"}, "colour", "unknown field 'colour'"),
    ],
)
def test_a_bad_document_names_its_field(
    document: dict[str, object], param: str, message: str
) -> None:
    """Each refusal is an InvalidDocument (400, code invalid_document) naming the field."""
    with pytest.raises(InvalidDocument) as caught:
        movie_record("test:1", document)
    assert (param, "invalid_document", 400) == (
        caught.value.param,
        caught.value.code,
        caught.value.status_code,
    )
    assert message in caught.value.message


def test_a_bad_line_names_its_line_and_field() -> None:
    """A bulk line's error starts with its line number; source and source_id are required."""
    with pytest.raises(InvalidDocument) as caught:
        operation_of_line({"source": "imdb", "title": "X"}, 7)
    assert ("source_id", 7, "line 7: source_id is required on each line") == (
        caught.value.param,
        caught.value.line,
        caught.value.message,
    )
    with pytest.raises(InvalidDocument) as caught:
        operation_of_line({"source": "IMDB", "source_id": "1", "title": "X"}, 2)
    assert "source" == caught.value.param
    assert DeleteMovie("imdb:tt1") == operation_of_line(
        {"source": "imdb", "source_id": "tt1", "op": "delete"}, 3
    )


# -- writes on each backend -----------------------------------------------------------------


def test_a_put_is_found_by_search_typo_and_autocomplete(
    engine: BlockingSearchEngine, writable: Settings
) -> None:
    """After a put and the poller's refresh, the new title's words are found exactly, with
    a typo (a word the stored index never held), by an alternate title and by autocomplete;
    the stored index is still the import's (overlay, no rebuild)."""
    before = engine.snapshot
    report = _write(engine, writable, PutMovie(NEW))
    assert ["created"] == [o.result for o in report.outcomes]  # type: ignore[attr-defined]
    assert report.catalog_version == before.version + 1  # type: ignore[attr-defined]
    assert engine.refresh_if_changed()
    after = engine.snapshot
    # Still the import's index, mapped from its file: the write sits in the overlay.
    assert isinstance(after.vocabulary.arrays.blob, mmap.mmap)
    assert "zorblax" not in before.vocabulary and "zorblax" in after.vocabulary
    for q in ("zorblax", "zorblix quintesence", "flurbo"):
        assert ["Zorblax Quintessence"] == _titles(engine, q), q
    suggestions = engine.autocomplete(parse_autocomplete([("q", "zorbl")]))
    assert ["Zorblax Quintessence"] == [s["title"] for s in suggestions]
    movie = engine.get_movie("doc:1")
    assert movie is not None
    assert (2024, 99, 7.5, 1234, ["Drama", "Mockumentary"], ["Flurbo Quint"]) == (
        movie["year"], movie["runtime_min"], movie["rating"], movie["votes"], movie["genres"],
        movie["alt_titles"],
    )  # fmt: skip


def test_postings_follow_writes(engine: BlockingSearchEngine, writable: Settings) -> None:
    """Each catalog version's snapshot has title postings over that version's titles
    (the import's and the delta of the writes since, on either backend): a put's words
    list its rank, and after its delete they list none (so searches answered from the
    postings see writes as the title index does)."""
    assert engine.snapshot.postings is not None
    assert [] == engine.snapshot.postings.word("zorblax").tolist()
    _write(engine, writable, PutMovie(NEW))
    assert engine.refresh_if_changed()
    postings = engine.snapshot.postings
    assert postings is not None
    [rank] = postings.word("zorblax").tolist()
    assert [rank] == postings.word("flurbo").tolist()  # the alternate title's word
    assert ["zorblax quintessence", "flurbo quint"] == postings.titles(rank)
    _write(engine, writable, DeleteMovie("doc:1"))
    assert engine.refresh_if_changed()
    postings = engine.snapshot.postings
    assert postings is not None
    assert ([], []) == (postings.word("zorblax").tolist(), postings.word("flurbo").tolist())
    assert [] == _titles(engine, "zorblax")


def test_the_same_put_twice_is_one_change(engine: BlockingSearchEngine, writable: Settings) -> None:
    """A second identical put answers "unchanged" and commits no version; a changed field is
    "updated" with a new version, and the alternate titles are replaced, not merged."""
    first = _write(engine, writable, PutMovie(NEW))
    again = _write(engine, writable, PutMovie(NEW))
    assert ("unchanged", None) == (again.outcomes[0].result, again.catalog_version)  # type: ignore[attr-defined]
    changed = _write(engine, writable, PutMovie(replace(NEW, votes=99, alt_titles=("Other",))))
    assert ("updated", first.catalog_version + 1) == (  # type: ignore[attr-defined]
        changed.outcomes[0].result,
        changed.catalog_version,  # type: ignore[attr-defined]
    )
    engine.refresh_if_changed()
    assert ["Other"] == engine.get_movie("doc:1")["alt_titles"]  # type: ignore[index]
    assert [] == _titles(engine, "flurbo")


def test_a_delete_leaves_search_autocomplete_facets_and_typos(
    engine: BlockingSearchEngine, writable: Settings
) -> None:
    """A deleted movie is gone from search (exact and typo), autocomplete, the genre facet
    and filter, and its words that no other title holds leave the vocabulary."""
    _write(engine, writable, PutMovie(NEW))
    engine.refresh_if_changed()
    facets = engine.search(parse_search([("facets", "genres")])).facets
    assert 1 == facets["genres"]["Mockumentary"]  # type: ignore[index]
    report = _write(engine, writable, DeleteMovie("doc:1"), DeleteMovie("doc:none"))
    assert ["deleted", "not_found"] == [o.result for o in report.outcomes]  # type: ignore[attr-defined]
    engine.refresh_if_changed()
    assert [] == _titles(engine, "zorblax") == _titles(engine, "zorblix")
    assert [] == engine.autocomplete(parse_autocomplete([("q", "zorbl")]))
    facets = engine.search(parse_search([("facets", "genres")])).facets
    assert "Mockumentary" not in facets["genres"]  # type: ignore[index]
    assert 0 == engine.search(parse_search([("genres", "Mockumentary")])).total
    assert "zorblax" not in engine.snapshot.vocabulary
    assert () == engine.snapshot.typos.candidates("zorblix")
    assert "Heat" in _titles(engine, "heat")  # the rest of the catalog is untouched


def test_deleting_an_imported_movie(engine: BlockingSearchEngine, writable: Settings) -> None:
    """An imported movie can be deleted: its words leave the index overlay (Heat is the only
    title with "heat"), and search no longer finds it."""
    assert ["Heat"] == _titles(engine, "heat")
    _write(engine, writable, DeleteMovie("imdb:tt0000014"))
    engine.refresh_if_changed()
    assert [] == _titles(engine, "heat")
    assert "heat" not in engine.snapshot.vocabulary


def test_change_records_name_the_words_before_and_after(
    engine: BlockingSearchEngine, writable: Settings
) -> None:
    """changes_since lists each write's movies with their words before and after, oldest
    first, reading through the engine; an import resets them (ChangesUnavailable)."""
    start = engine.snapshot.version
    created = _write(engine, writable, PutMovie(NEW))
    _write(engine, writable, PutMovie(replace(NEW, title="Zorblax Returns", alt_titles=())))
    movie_id = created.outcomes[0].movie_id  # type: ignore[attr-defined]
    found = engine.run(lambda e: changes_since(e, start))
    assert [
        MovieChange(start + 1, movie_id, frozenset(),
                    frozenset({"zorblax", "quintessence", "flurbo", "quint"})),
        MovieChange(start + 2, movie_id,
                    frozenset({"zorblax", "quintessence", "flurbo", "quint"}),
                    frozenset({"zorblax", "returns"})),
    ] == found  # fmt: skip
    assert found[1:] == engine.run(lambda e: changes_since(e, start + 1))
    assert found[:1] == engine.run(lambda e: changes_since(e, start, until=start + 1))
    with pytest.raises(ChangesUnavailable):
        engine.run(lambda e: changes_since(e, start - 1))


def test_change_records_are_pruned_whole_versions_at_a_time(
    engine: BlockingSearchEngine, writable: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With room for 3 records, pruning (every 2nd version here) drops the oldest versions
    and moves changes_from past them: asking from before it is ChangesUnavailable."""
    monkeypatch.setattr(changes_module, "MAX_CHANGE_RECORDS", 3)
    monkeypatch.setattr(changes_module, "PRUNE_EVERY", 2)
    start = engine.snapshot.version
    for n in range(6):
        _write(engine, writable, PutMovie(replace(NEW, source_key=f"doc:{n}", title=f"T {n}")))
    kept = engine.run(lambda e: changes_since(e, start + 2))
    assert 4 >= len(kept) >= 3
    with pytest.raises(ChangesUnavailable):
        engine.run(lambda e: changes_since(e, start))


def test_two_concurrent_writers_both_commit(
    engine: BlockingSearchEngine, writable: Settings
) -> None:
    """Two writers at once (different movies, one shared): both commit, one version each,
    nothing lost; the shared movie ends as one of the two bodies, never a mix."""

    async def both() -> list[object]:
        one, two = CatalogWriter(writable), CatalogWriter(writable)
        shared_a = replace(NEW, source_key="doc:shared", title="Shared Alpha", votes=1)
        shared_b = replace(NEW, source_key="doc:shared", title="Shared Beta", votes=2)
        batch_a = [PutMovie(replace(NEW, source_key=f"a:{n}", title=f"Alpha {n}"))
                   for n in range(50)]  # fmt: skip
        batch_b = [PutMovie(replace(NEW, source_key=f"b:{n}", title=f"Beta {n}"))
                   for n in range(50)]  # fmt: skip
        return await asyncio.gather(
            one.write([*batch_a, PutMovie(shared_a)]), two.write([PutMovie(shared_b), *batch_b])
        )

    start = engine.snapshot.version
    reports = engine.run(lambda _: both())
    assert {start + 1, start + 2} == {r.catalog_version for r in reports}  # type: ignore[attr-defined]
    engine.refresh_if_changed()
    assert 30 + 101 == engine.snapshot.movie_count
    shared = engine.get_movie("doc:shared")
    assert (shared["title"], shared["votes"]) in {("Shared Alpha", 1), ("Shared Beta", 2)}  # type: ignore[index]


def test_a_write_during_an_import_waits_or_is_refused(
    engine: BlockingSearchEngine, writable: Settings, paused_import: type
) -> None:
    """While an import holds the catalog, a write with a short wait is refused
    (DatabaseUnavailable: a 503); one that waits longer applies on top of the new catalog.
    The import's version resets the change records."""
    start = engine.snapshot.version
    with paused_import(writable) as job:
        job.start()
        impatient = replace(writable, write_lock_timeout_ms=200)
        with pytest.raises(DatabaseUnavailable, match="locked"):
            _write(engine, impatient, PutMovie(NEW))
        waited: list[object] = []
        writer = threading.Thread(
            target=lambda: waited.append(_write(engine, writable, PutMovie(NEW)))
        )
        writer.start()
        job.finish()
        writer.join(30)
    assert 1 == len(waited)
    report = waited[0]
    assert ("created", start + 2) == (report.outcomes[0].result, report.catalog_version)  # type: ignore[attr-defined]
    engine.refresh_if_changed()
    assert 201 == engine.snapshot.movie_count  # the import's 200 films, then the write
    assert ["Zorblax Quintessence"] == _titles(engine, "zorblix")
    with pytest.raises(ChangesUnavailable):
        engine.run(lambda e: changes_since(e, start))
    assert 1 == len(engine.run(lambda e: changes_since(e, start + 1)))


# -- import jsonl ---------------------------------------------------------------------------


def _jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_import_jsonl_replaces_the_catalog_and_skips_bad_lines(
    writable: Settings, tmp_path: Path
) -> None:
    """Good lines become the catalog (31 > 30 movies: no shrink); bad ones are reported with
    line and field; afterwards searches find the new titles."""
    lines = [
        f'{{"source": "j", "source_id": "{n}", "title": "Jsonl Film {n}", "year": 2000}}'
        for n in range(31)
    ]
    lines += ['{"source": "j", "source_id": "x", "title": "Bad", "year": "soon"}', "{oops"]
    report = import_jsonl(writable, _jsonl(tmp_path / "movies.jsonl", lines))
    assert (33, 31, 2) == (report.rows_read, report.movies_written, report.bad_rows)
    assert "year must be a whole number" in report.bad_row_samples[0].reason
    assert 32 == report.bad_row_samples[0].line
    engine = open_blocking_engine(writable)
    try:
        assert 31 == engine.snapshot.movie_count
        assert "Jsonl Film 7" in _titles(engine, "jsonl film 7")
    finally:
        engine.close()


def test_import_jsonl_guards(writable: Settings, tmp_path: Path) -> None:
    """An empty file and one that would shrink 30 movies to 2 are refused, the catalog kept;
    --allow-shrink (import_max_shrink=1) lets the shrink through."""
    with pytest.raises(ImportFailed, match="no movies to import"):
        import_jsonl(writable, _jsonl(tmp_path / "empty.jsonl", []))
    two = _jsonl(tmp_path / "two.jsonl", [
        '{"source": "j", "source_id": "1", "title": "One"}',
        '{"source": "j", "source_id": "2", "title": "Two"}',
    ])  # fmt: skip
    with pytest.raises(ImportFailed, match="shrink the catalog from 30 to 2"):
        import_jsonl(writable, two)
    engine = open_blocking_engine(writable)
    try:
        assert 30 == engine.snapshot.movie_count
    finally:
        engine.close()
    assert 2 == import_jsonl(replace(writable, import_max_shrink=1.0), two).movies_written


def test_import_jsonl_on_the_command_line(writable: Settings, tmp_path: Path) -> None:
    """`reelsearch import jsonl` refuses a shrink (exit 1, catalog unchanged), passes with
    --allow-shrink, and --quiet prints only the summary."""
    path = _jsonl(tmp_path / "one.jsonl", ['{"source": "j", "source_id": "1", "title": "One"}'])
    command = [sys.executable, "-m", "reelsearch", "--database-url", writable.database_url,
               "import", "jsonl", str(path)]  # fmt: skip
    refused = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert 1 == refused.returncode
    assert "import refused; the catalog is unchanged" in refused.stderr
    done = subprocess.run([*command, "--allow-shrink", "--quiet"], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert (0, "") == (done.returncode, done.stderr)
    assert done.stdout.startswith("imported jsonl: 1 movies")


def test_a_refresh_after_writes_moves_facets_and_keeps_the_index(
    engine: BlockingSearchEngine, writable: Settings
) -> None:
    """After writes only, the poller's refresh keeps the mapped word index (the same arrays)
    and moves the catalog-wide facets by the change records: the result equals a full
    reload's (a fresh engine) for genres, decades, size, kinds and words."""
    before = engine.snapshot
    _write(engine, writable, PutMovie(NEW), PutMovie(replace(NEW, source_key="doc:2",
           title="Older One", year=1931, genres=("Western",), kind="short")))  # fmt: skip
    _write(engine, writable, DeleteMovie("imdb:tt0000014"),  # Heat: Action, Crime, Drama, 1995
           PutMovie(replace(NEW, genres=("Drama",), year=1999)))  # fmt: skip
    assert engine.refresh_if_changed()
    after = engine.snapshot
    assert after.vocabulary.arrays is before.vocabulary.arrays
    fresh = open_blocking_engine(writable)
    try:
        full = fresh.snapshot
    finally:
        fresh.close()
    assert full.catalog_facets == after.catalog_facets
    assert (full.version, full.movie_count, full.kinds, full.genres) == (
        after.version, after.movie_count, after.kinds, after.genres
    )  # fmt: skip
    assert {"Western": 1, "Mockumentary": None} == {
        g: after.catalog_facets["genres"].get(g) for g in ("Western", "Mockumentary")
    }
    assert 1 == after.catalog_facets["decade"]["1930"]
    for word in ("zorblax", "older", "heat", "matrix"):
        assert (word in full.vocabulary) == (word in after.vocabulary), word
