"""Title postings of a PostgreSQL catalog (docs/decisions/0037): built and stored by the
import, copied once per host and mapped, answering a small match in memory so that a
search reads no more than its page's rows by rank (none with the hit rows); a damaged or
missing copy in the database falls back to the title index (logged), and writes keep
every answer exact."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from test_stored_postings import NEW  # the same new movie as on SQLite

from conftest import SMALL_AKAS, SMALL_TITLES, TEST_DEADLINE_MS, write_imdb
from reelsearch.catalog.documents import DeleteMovie, Operation, PutMovie
from reelsearch.catalog.importers.imdb import import_imdb
from reelsearch.catalog.records import MovieRecord
from reelsearch.catalog.titles import title_document
from reelsearch.catalog.writes import CatalogWriter
from reelsearch.config import Settings
from reelsearch.search.engine import SearchResult
from reelsearch.search.postgres import PostgresSearchEngine
from reelsearch.search.postings import POSTGRES_MAX_PREFIX_POSTINGS, TitlePostings
from reelsearch.search.query import parse_search
from reelsearch.search.stored_postings import postings_cache_name

pytestmark = pytest.mark.postgres

# Queries of every kind the small catalog answers: known items, prefixes, typos,
# dropped words, exclusions, phrases, broad words, filters and sorts (the page
# statement's paths), facets.
QUERIES: list[list[tuple[str, str]]] = [
    [("q", q)]
    for q in (
        "casablanca", "toy story", "toy", "to", "t", "star wars", "wars star", "matirx",
        "godfahter", "toy qqqzz", "story -toy", '"toy story"', "the", "amelie", "leon",
        "seven", "zorblax", "zorb", "flurbo quint", "tale",
    )
] + [
    [("q", "toy"), ("year_from", "1990")],
    [("q", "story"), ("sort", "-year")],
    [("q", "the"), ("facets", "genres,decade")],
    [("q", "star"), ("offset", "1"), ("limit", "2")],
]  # fmt: skip
# TextStatements.rows_by_rank's statement, as asyncpg receives it (a small match sends
# it only without the hit rows: tests/search/test_postgres_hit_rows.py).
ROWS_BY_RANK = "WHERE m.search_rank IN ($1"


class Engine:
    """A PostgreSQL engine on one pooled connection, on a loop of its own, its statements
    logged."""

    def __init__(self, settings: Settings) -> None:
        self.settings = replace(settings, db_pool_size=1, db_max_overflow=0)
        self.loop = asyncio.new_event_loop()
        self.engine = self.run(PostgresSearchEngine.open(self.settings))
        self.statements: list[str] = []
        self.run(self._log())

    async def _log(self) -> None:
        async with self.engine.pool.connection() as conn:
            conn.add_query_logger(lambda record: self.statements.append(record.query))

    @property
    def postings(self) -> TitlePostings | None:
        return self.engine.snapshot.postings

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def search(self, params: list[tuple[str, str]]) -> SearchResult:
        return self.run(self.engine.search(parse_search(params)))  # type: ignore[no-any-return]

    def sent(self, params: list[tuple[str, str]]) -> list[str]:
        """The statements a search sent (plan mode switches left out)."""
        self.statements.clear()
        self.search(params)
        self.run(asyncio.sleep(0.01))  # asyncpg calls its query loggers soon after
        return [sql for sql in self.statements if not sql.startswith("SET plan_cache_mode")]

    def write(self, *operations: Operation) -> None:
        self.run(CatalogWriter(self.settings).write(list(operations)))
        assert self.run(self.engine.refresh_if_changed())

    def close(self) -> None:
        self.run(self.engine.close())
        self.loop.close()


def import_small(create: Callable[[str], str], tmp_path: Path, name: str) -> Settings:
    """The small titles imported into a new PostgreSQL database ``name`` (``create``:
    conftest's ``postgres_databases``), with a private per-host cache directory."""
    settings = Settings(
        database_url=create(name),
        search_deadline_ms=TEST_DEADLINE_MS,
        word_index_cache_dir=str(tmp_path / "cache"),
    )
    import_imdb(settings, list(write_imdb(tmp_path / "dump", SMALL_TITLES, SMALL_AKAS).values()))
    return settings


@pytest.fixture
def imported(postgres_databases: Callable[[str], str], tmp_path: Path) -> Settings:
    """The small titles imported into a private PostgreSQL database, with a private
    per-host cache directory."""
    return import_small(postgres_databases, tmp_path, "postings")


@pytest.fixture
def engine(imported: Settings) -> Iterator[Engine]:
    opened = Engine(imported)
    yield opened
    opened.close()


def _sql(settings: Settings, statement: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        cursor = conn.execute(statement)
        return cursor.fetchall() if cursor.description else []


def _answers(engine: Engine) -> list[tuple[Any, ...]]:
    """Every answer of QUERIES: hits, totals, exactness, facets."""
    found = []
    for params in QUERIES:
        result = engine.search(params)
        found.append((params, result.hits, result.total, result.total_is_exact, result.facets))
    return found


def _assert_as_tsvectors(settings: Settings, postings: TitlePostings) -> None:
    """Each word of the title index lists exactly the titles whose tsvector holds it,
    and each movie's rank has its current title document."""
    rows = _sql(
        settings,
        "SELECT word, array_agg(search_rank ORDER BY search_rank) FROM movies, "
        "unnest(tsvector_to_array(title_tsv)) AS word WHERE word <> '^' GROUP BY word",
    )
    assert len(rows) > 40
    for word, ranks in rows:
        assert list(ranks) == postings.word(word).tolist(), word
    for rank, norm_title, alternates in _sql(
        settings, "SELECT search_rank, norm_title, alt_norm_titles FROM movies"
    ):
        assert title_document(norm_title, alternates) == postings.document(rank)


def test_the_import_stores_postings_the_engine_maps_from_the_host_copy(
    imported: Settings, engine: Engine
) -> None:
    """The import names the postings in catalog_meta and stores them in chunks; the
    engine copies them into the cache directory, named by version and checksum, and
    every word lists exactly the titles whose tsvector holds it."""
    ((reference,),) = _sql(imported, "SELECT value FROM catalog_meta WHERE key = 'title_postings'")
    name, _, digest = reference.partition(" ")
    assert "title_postings-1" == name
    assert [(1, 0)] == _sql(imported, "SELECT version, part FROM title_postings")
    assert engine.postings is not None
    assert reference == engine.engine.snapshot.stored_postings
    copy = imported.word_index_cache / postings_cache_name(1, digest)
    assert copy.is_file()
    _assert_as_tsvectors(imported, engine.postings)


def test_a_small_filtered_match_is_filtered_in_memory(imported: Settings, engine: Engine) -> None:
    """A small match filtered on the movies' columns (a year, votes) is filtered on the
    columns stored with the hit rows (search/filter_columns.py): no statement, and the
    answer of the engine without postings; a year typed among the words (a condition on
    the title too) keeps the one page statement."""
    off = Engine(replace(imported, title_postings_max_movies=0))
    try:
        for params in ([("q", "toy"), ("year_from", "1990")], [("q", "story"), ("min_votes", "5")]):
            assert [] == engine.sent(params), params
            found, expected = engine.search(params), off.search(params)
            assert found.hits, params
            assert (expected.hits, expected.total) == (found.hits, found.total), params
        sent = engine.sent([("q", "toy story 1995")])
        assert 1 == len(sent)
        assert "@@" in sent[0]
    finally:
        off.close()


def test_a_host_copy_is_made_once(imported: Settings, engine: Engine) -> None:
    """A second worker on the host maps the copy the first made: not written again,
    and the chunks are not read again."""
    reference = engine.engine.snapshot.stored_postings
    assert reference is not None
    copy = imported.word_index_cache / postings_cache_name(1, reference.partition(" ")[2])
    before = copy.stat()
    _sql(imported, "UPDATE title_postings SET data = '\\x00'")  # a read would refuse it
    second = Engine(imported)
    try:
        assert second.postings is not None
        assert (before.st_ino, before.st_mtime_ns) == (copy.stat().st_ino, copy.stat().st_mtime_ns)
    finally:
        second.close()


def test_a_damaged_host_copy_is_copied_again(imported: Settings, engine: Engine) -> None:
    """A host copy that fails its checksum is replaced from the database."""
    reference = engine.engine.snapshot.stored_postings
    assert reference is not None
    copy = imported.word_index_cache / postings_cache_name(1, reference.partition(" ")[2])
    image = bytearray(copy.read_bytes())
    image[-1] ^= 0xFF
    copy.write_bytes(bytes(image))
    second = Engine(imported)
    try:
        assert second.postings is not None
        assert second.postings.word("casablanca").tolist() == [
            rank for ((rank,)) in _sql(imported, "SELECT search_rank FROM movies "
                                       "WHERE norm_title = 'casablanca'")
        ]  # fmt: skip
    finally:
        second.close()


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE title_postings SET data = overlay(data PLACING '\\xff' FROM 100 FOR 1)",
        "DELETE FROM title_postings",
        "DELETE FROM catalog_meta WHERE key = 'title_postings'",
    ],
)
def test_damaged_or_missing_stored_postings_fall_back_with_a_log(
    imported: Settings, tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Stored postings that are damaged, missing, or not named: on a host without a copy
    the snapshot has none (logged) and searches answer as without postings."""
    off = Engine(replace(imported, title_postings_max_movies=0))
    try:
        expected = _answers(off)
    finally:
        off.close()
    _sql(imported, damage)
    caplog.set_level(logging.WARNING)
    fresh = Engine(replace(imported, word_index_cache_dir=str(tmp_path / "other host")))
    try:
        assert None is fresh.postings
        assert "title postings" in caplog.text
        assert expected == _answers(fresh)
    finally:
        fresh.close()


def test_writes_keep_every_answer_exact(imported: Settings, engine: Engine) -> None:
    """Created, retitled and deleted movies through the documents API: the postings
    follow as a delta (the mapping kept), list exactly the tsvectors' titles, and
    every answer is the engine's without postings."""
    arrays = engine.postings.arrays if engine.postings is not None else None
    toy_story = MovieRecord(source_key="imdb:tt0000024", title="Toy Tale", year=1995)
    steps: list[tuple[Operation, ...]] = [
        (DeleteMovie("imdb:tt0000020"),),
        (PutMovie(NEW),),
        (PutMovie(toy_story),),
        (DeleteMovie("imdb:tt0000025"),),
        (PutMovie(replace(NEW, source_key="doc:2", title="Second Zorblax", alt_titles=())),),
    ]
    for operations in steps:
        engine.write(*operations)
        postings = engine.postings
        assert postings is not None, operations
        assert arrays is postings.arrays, operations  # mapped once, not again per write
        _assert_as_tsvectors(imported, postings)
    off = Engine(replace(imported, title_postings_max_movies=0))
    try:
        assert _answers(off) == _answers(engine)
    finally:
        off.close()
    assert ["Zorblax Quintessence", "Second Zorblax"] == [
        hit["title"] for hit in engine.search([("q", "zorblax")]).hits
    ]


SAMPLE_SEARCHES: list[list[tuple[str, str]]] = [
    [("q", "the matrix")], [("q", "casablanca")], [("q", "wars star")], [("q", "the godf")],
    [("q", "lo")], [("q", "love")], [("q", "the last")], [("q", "matirx")],
    [("q", "godfahter part")], [("q", "la pete")], [("q", "king kong 1933")],
    [("q", "matrix qqqqzz")], [("q", "star -wars")], [("q", '"the last"')],
    [("q", "dr strangelove or how i learned to stop worrying")], [("q", "zzzzqqq")],
    [("q", "star"), ("offset", "10")], [("q", "love"), ("genres", "Comedy,Drama")],
    [("q", "the b")], [("q", "les mo")], [("q", "with a s")], [("q", "day and")], [("q", "t")],
    [("q", "love t")], [("q", "the b"), ("year_from", "1990")],
]  # fmt: skip


def test_on_the_sample_a_search_is_at_most_one_round_trip_answering_as_without(
    sample_pg_settings: Settings,
) -> None:
    """On the real sample, searches of every kind send at most one statement with the
    postings (none reads the title index when the postings answer), and every answer
    is the engine's without them."""
    on, off = (
        Engine(sample_pg_settings),
        Engine(replace(sample_pg_settings, title_postings_max_movies=0)),
    )
    try:
        assert on.postings is not None
        from_postings = []
        for params in SAMPLE_SEARCHES:
            sent = on.sent(params)
            assert len(sent) <= 1, (params, sent)
            if all("@@" not in sql for sql in sent):
                from_postings.append(params[0][1])
            with_postings, without = on.search(params), off.search(params)
            assert (without.hits, without.total, without.total_is_exact) == (
                with_postings.hits, with_postings.total, with_postings.total_is_exact
            ), params  # fmt: skip
        # Broad matches ("lo", "love", "the last" typed or quoted, "star -wars", "star"
        # past its first page, "love" among comedies or dramas, "the b", "t" and "love t",
        # whose prefix SQLite leaves to FTS5) too: their tiers from the postings
        # (RankSets.tier_rows). Not: a year among the words.
        assert [
            "the matrix", "casablanca", "wars star", "the godf", "lo", "love", "the last",
            "matirx", "godfahter part", "la pete", "matrix qqqqzz", "star -wars", '"the last"',
            "dr strangelove or how i learned to stop worrying", "zzzzqqq", "star", "love",
            "the b", "les mo", "with a s", "day and", "t", "love t", "the b",
        ] == from_postings  # fmt: skip
    finally:
        on.close()
        off.close()


def test_an_import_whose_words_the_index_lacks_stores_no_postings(
    postgres_databases: Callable[[str], str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A title word past the tsvector's 2,047 bytes is in no word index: the build's check
    fails, the import stores no postings (logged), and searches read the title index."""
    long_word = "z" * 2_100
    titles = [*SMALL_TITLES, ("tt0000999", "movie", f"Long {long_word}", f"Long {long_word}",
                              "2001", "90", "Drama", 7.0, 5000)]  # fmt: skip
    settings = Settings(
        database_url=postgres_databases("refused"),
        search_deadline_ms=TEST_DEADLINE_MS,
        word_index_cache_dir=str(tmp_path / "cache"),
    )
    caplog.set_level(logging.WARNING)
    import_imdb(settings, list(write_imdb(tmp_path / "dump", titles, SMALL_AKAS).values()))
    assert "title postings not built" in caplog.text
    assert [] == _sql(settings, "SELECT value FROM catalog_meta WHERE key = 'title_postings'")
    assert [] == _sql(settings, "SELECT version FROM title_postings")
    engine = Engine(settings)
    try:
        assert None is engine.postings
        assert ["Casablanca"] == [hit["title"] for hit in engine.search([("q", "casablanca")]).hits]
    finally:
        engine.close()


def test_postgresql_merges_broader_prefixes_than_sqlite(
    sample_pg_settings: Settings, sample_settings: Settings
) -> None:
    """On PostgreSQL a broad prefix the SQLite postings leave to FTS5 ("t"*: every word
    it begins, past MAX_PREFIX_POSTINGS on the sample) is merged from the postings, and
    is the titles FTS5 finds for it (both catalogs are the same import, rank for rank)."""
    on = Engine(sample_pg_settings)
    try:
        postings = on.postings
        assert postings is not None
        assert POSTGRES_MAX_PREFIX_POSTINGS == postings.max_prefix_postings
        merged = postings.prefix("t")
        assert merged is not None
    finally:
        on.close()
    conn = sqlite3.connect(f"file:{sample_settings.sqlite_path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT rowid FROM title_fts WHERE title_fts MATCH '\"t\"*' ORDER BY rowid"
        )
        expected = [rank for (rank,) in rows]
    finally:
        conn.close()
    # 18,106 titles, from more than MAX_PREFIX_POSTINGS postings ("the", "to", "two"...):
    # the SQLite postings leave it to FTS5 (tests/search/test_rank_sets.py).
    assert 18_106 == len(expected)
    assert expected == merged.tolist()
