"""Every movie's hit row of a PostgreSQL catalog (search/hit_rows.py, decision 0043):
stored by the import in chunks, copied once per host and mapped, so a page the title
postings answer reads no row from the server; each mapped row is exactly the row the
statement reads through asyncpg; the rows of movies written since the import are read
by statement; chunks that cannot be trusted are not used."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from test_filter_columns import FILTERED
from test_hit_rows import NEW, TOY_STORY
from test_postgres_postings import ROWS_BY_RANK, Engine, _answers, _sql, import_small

from reelsearch.catalog.documents import DeleteMovie, Operation, PutMovie
from reelsearch.catalog.records import MovieRecord
from reelsearch.config import Settings
from reelsearch.search.columns import COLUMNS, SEARCH_RANK
from reelsearch.search.hit_rows import HIT_ROWS_SQL, HitRows, hit_rows_cache_name

pytestmark = pytest.mark.postgres

NO_HIT_ROWS = "DELETE FROM catalog_meta WHERE key = 'hit_rows'"


@pytest.fixture
def imported(postgres_databases: Callable[[str], str], tmp_path: Path) -> Settings:
    """The small titles imported into a private PostgreSQL database, with a private
    per-host cache directory."""
    return import_small(postgres_databases, tmp_path, "hit_rows")


@pytest.fixture
def engine(imported: Settings) -> Iterator[Engine]:
    """An engine on ``imported``, its snapshot mapping the host's copy of the hit rows."""
    opened = Engine(imported)
    yield opened
    opened.close()


def _hit_rows(engine: Engine) -> HitRows:
    """The hit rows ``engine``'s snapshot maps (it must map some)."""
    rows = engine.engine.snapshot.hit_rows
    assert rows is not None
    return rows


def _statement_rows(engine: Engine) -> dict[int, tuple[Any, ...]]:
    """rank -> the row ``rows_by_rank``'s statement reads through asyncpg, for every movie."""

    async def read() -> list[Any]:
        async with engine.engine.pool.connection() as conn:
            return list(await conn.fetch(f"SELECT {COLUMNS} FROM movies AS m"))

    return {row[SEARCH_RANK]: tuple(row) for row in engine.run(read())}


def _filled(rows: HitRows, ranks: list[int]) -> dict[int, Any]:
    """rank -> the row ``rows`` gives, for those of ``ranks`` it holds."""
    known: dict[int, Any] = {}
    rows.fill(ranks, known)
    return known


def test_every_stored_row_of_the_sample_is_the_row_asyncpg_reads(
    sample_pg_settings: Settings, tmp_path: Path
) -> None:
    """On the sample imported into PostgreSQL, the mapped row of each of the 58,788 movies
    is the one asyncpg reads, value for value and type for type (the import reads them
    with psycopg); the import named them ``hit_rows-<version>`` in one chunk."""
    opened = Engine(replace(sample_pg_settings, word_index_cache_dir=str(tmp_path / "cache")))
    try:
        expected = _statement_rows(opened)
        found = _filled(_hit_rows(opened), [*expected, max(expected) + 1])
        version = opened.engine.snapshot.version
    finally:
        opened.close()
    ((reference,),) = _sql(sample_pg_settings, HIT_ROWS_SQL)
    assert f"hit_rows-{version}" == reference.partition(" ")[0]
    assert [(version, 0)] == _sql(sample_pg_settings, "SELECT version, part FROM hit_rows")
    assert 58_788 == len(expected)
    assert expected == found
    assert all(
        [type(v) for v in expected[rank]] == [type(v) for v in found[rank]] for rank in expected
    )


def test_a_small_match_sends_no_statement_and_answers_as_without(
    imported: Settings, engine: Engine
) -> None:
    """A known-item search sends nothing to the server: ranked from the postings, its rows
    from the host's copy; with the catalog naming no hit rows it reads its page's rows by
    rank, and every answer is the same (and the engine's without postings)."""
    reference = _hit_rows(engine).reference
    copy = imported.word_index_cache / hit_rows_cache_name(1, reference.partition(" ")[2])
    assert copy.is_file()
    assert [] == engine.sent([("q", "toy story")])
    assert "Toy Story" == engine.search([("q", "toy story")]).hits[0]["title"]
    _sql(imported, NO_HIT_ROWS)
    by_statement = Engine(imported)
    without_postings = Engine(replace(imported, title_postings_max_movies=0))
    try:
        assert None is by_statement.engine.snapshot.hit_rows
        sent = by_statement.sent([("q", "toy story")])
        assert 1 == len(sent)
        assert ROWS_BY_RANK in sent[0] and "@@" not in sent[0]
        assert _answers(by_statement) == _answers(engine) == _answers(without_postings)
    finally:
        by_statement.close()
        without_postings.close()


def test_rows_of_written_movies_are_read_by_statement(engine: Engine) -> None:
    """After each write (a delete, a create, a rating changed under the same title, a
    retitle), every row the mapped copy still gives is asyncpg's, the written movies'
    ranks are left to the statement, the copy stays mapped once, and searches show the
    movies as written."""
    mapped = _hit_rows(engine)
    steps: list[tuple[Operation, ...]] = [
        (DeleteMovie("imdb:tt0000020"),),
        (PutMovie(NEW),),
        (PutMovie(TOY_STORY),),
        (PutMovie(MovieRecord(source_key="imdb:tt0000029", title="Casablanca Nights")),),
    ]
    written: set[str] = set()
    for operations in steps:
        engine.write(*operations)
        written.update(operation.source_key for operation in operations)
        rows = _hit_rows(engine)
        assert mapped.same_mapping(rows), operations
        expected = _statement_rows(engine)
        found = _filled(rows, sorted(expected))
        assert {rank: expected[rank] for rank in found} == found, operations
        left = {row[-1] for rank, row in expected.items() if rank not in found}
        assert written - {"imdb:tt0000020"} == left, operations
    toy = engine.search([("q", "toy story"), ("limit", "1")]).hits[0]
    assert ("Toy Story", 2.5, 7) == (toy["title"], toy["rating"], toy["votes"])
    casablanca = engine.search([("q", "casablanca")]).hits
    assert ["Casablanca Nights"] == [hit["title"] for hit in casablanca]
    off = Engine(replace(engine.settings, title_postings_max_movies=0))
    try:
        assert _answers(off) == _answers(engine)
    finally:
        off.close()


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE hit_rows SET data = overlay(data PLACING '\\xff' FROM 100 FOR 1)",
        "DELETE FROM hit_rows",
    ],
)
def test_damaged_or_missing_stored_rows_are_not_used(
    imported: Settings, tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Chunks that are damaged or missing, on a host without a copy: no hit rows (logged),
    pages read their rows by statement and answer the same."""
    before = Engine(imported)
    try:
        expected = _answers(before)
    finally:
        before.close()
    _sql(imported, damage)
    caplog.set_level(logging.WARNING)
    fresh = Engine(replace(imported, word_index_cache_dir=str(tmp_path / "other host")))
    try:
        assert fresh.postings is not None
        assert None is fresh.engine.snapshot.hit_rows
        assert "hit rows of catalog version 1 is missing or damaged" in caplog.text
        assert 1 == len(fresh.sent([("q", "toy story")]))
        assert expected == _answers(fresh)
    finally:
        fresh.close()


def test_a_host_copy_is_made_once_and_a_damaged_one_copied_again(
    imported: Settings, engine: Engine
) -> None:
    """A second worker maps the copy the first made (not written again); a copy that
    fails its checksum is replaced from the database."""
    reference = _hit_rows(engine).reference
    copy = imported.word_index_cache / hit_rows_cache_name(1, reference.partition(" ")[2])
    before = copy.stat()
    second = Engine(imported)
    try:
        assert second.engine.snapshot.hit_rows is not None
        assert (before.st_ino, before.st_mtime_ns) == (copy.stat().st_ino, copy.stat().st_mtime_ns)
    finally:
        second.close()
    image = bytearray(copy.read_bytes())
    image[-1] ^= 0xFF
    copy.write_bytes(bytes(image))
    third = Engine(imported)
    try:
        assert third.engine.snapshot.hit_rows is not None
        assert [] == third.sent([("q", "casablanca")])
        assert _answers(engine) == _answers(third)
        assert copy.read_bytes() != bytes(image)
    finally:
        third.close()


def test_filtered_searches_of_the_sample_answer_as_the_one_statement(
    sample_pg_settings: Settings, tmp_path: Path
) -> None:
    """On the sample in PostgreSQL, every filtered search of the SQLite comparison answers
    (hits, total, exactness) what the engine without postings answers with its one
    statement; the small ones send nothing, the broad ones that statement."""
    settings = replace(sample_pg_settings, word_index_cache_dir=str(tmp_path / "cache"))
    on, off = Engine(settings), Engine(replace(settings, title_postings_max_movies=0))
    try:
        sent_nothing = []
        for params in FILTERED:
            sent = on.sent(params)
            assert len(sent) <= 2, (params, sent)  # the page, and an alternate title's form
            if not sent:
                sent_nothing.append(params[0][1])
            found, expected = on.search(params), off.search(params)
            assert (expected.hits, expected.total, expected.total_is_exact) == (
                found.hits, found.total, found.total_is_exact
            ), params  # fmt: skip
        assert {"matrix", "godfather", "casablanca", "matirx", "zzzzqqq"} <= set(sent_nothing)
    finally:
        on.close()
        off.close()
