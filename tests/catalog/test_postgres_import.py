"""The PostgreSQL import (COPY into staging tables, swapped in at COMMIT) on the real server."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pytest

from reelsearch.catalog import CatalogImport, MovieRecord, upgrade_schema
from reelsearch.catalog.importers.imdb import import_imdb
from reelsearch.catalog.postgres_writer import PostgresCatalogImport
from reelsearch.catalog.titles import split_alt_titles
from reelsearch.catalog.tsvector import indexed_words, title_tsvector
from reelsearch.catalog.writer import open_import
from reelsearch.config import Settings
from reelsearch.errors import BadFileFormat, ImportFailed
from reelsearch.search.normalize import TITLE_SEPARATOR

pytestmark = pytest.mark.postgres

Databases = Callable[[str], str]
SENTINEL = "2000-01-01T00:00:00+00:00"
SWAPPED = ("movies", "alt_titles", "movie_genres", "title_words")


def connect(settings: Settings) -> psycopg.Connection[Any]:
    return psycopg.connect(settings.postgres_dsn, autocommit=True)


def query(settings: Settings, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with connect(settings) as conn:
        return conn.execute(sql, params or None).fetchall()


def catalog_state(settings: Settings) -> dict[str, Any]:
    """Everything an import may change, read in one snapshot."""
    with psycopg.connect(settings.postgres_dsn) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        state = {
            name: conn.execute(sql).fetchall()
            for name, sql in {
                "meta": "SELECT key, value FROM catalog_meta ORDER BY key",
                "movies": "SELECT id, source_key, title, original_title, year, runtime_min, "
                "rating, votes, genres, genre_mask, kind, norm_title, word_key, "
                "title_tsv::text, search_rank, import_id, updated_at FROM movies ORDER BY id",
                "alt_titles": "SELECT * FROM alt_titles ORDER BY movie_id, title",
                "genres": "SELECT bit, name FROM genres ORDER BY bit",
                "movie_genres": "SELECT * FROM movie_genres ORDER BY genre_bit, search_rank",
                "title_words": "SELECT word, docs FROM title_words ORDER BY word",
            }.items()
        }
        conn.rollback()
    return state


def schema_state(settings: Settings) -> dict[str, Any]:
    """Names and definitions of the swapped tables' indexes, constraints and sequence."""
    return {
        "indexes": query(
            settings,
            "SELECT tablename, indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = 'public' ORDER BY indexname",
        ),
        "constraints": query(
            settings,
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY conname",
        ),
        "sequence": query(settings, "SELECT pg_get_serial_sequence('movies', 'id')"),
        "relations": query(
            settings,
            "SELECT relname, relkind FROM pg_class "
            "WHERE relnamespace = 'public'::regnamespace ORDER BY relname",
        ),
    }


def fresh(postgres_databases: Databases, name: str) -> Settings:
    """Settings of a new, empty database (names here start with imp_, never small/sample)."""
    return Settings(database_url=postgres_databases(f"imp_{name}"))


def small_catalog(postgres_databases: Databases, name: str, imdb_writer: Any) -> Settings:
    """A private, writable PostgreSQL copy of the small catalog.

    Any shrink is allowed: these tests replace it with a few movies on purpose
    (the guard has its own tests in test_import_guards.py).
    """
    settings = fresh(postgres_databases, name)
    import_imdb(settings, list(imdb_writer().values()))
    return dataclasses.replace(settings, import_max_shrink=1.0)


def sqlite_rows(path: str, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


_PARITY_QUERIES = {
    "movies": (
        "SELECT id, source_key, title, original_title, year, runtime_min, rating, votes, genres, "
        "genre_mask, kind, norm_title, word_key, alt_norm_titles, search_rank, import_id "
        "FROM movies ORDER BY id"
    ),
    "alt_titles": "SELECT movie_id, title, norm_title FROM alt_titles ORDER BY movie_id, title",
    "genres": "SELECT bit, name FROM genres ORDER BY bit",
    "movie_genres": "SELECT genre_bit, search_rank FROM movie_genres ORDER BY 1, 2",
    "version": "SELECT value FROM catalog_meta WHERE key IN ('version', 'source') ORDER BY key",
}


def assert_same_catalog(sqlite_settings: Settings, pg_settings: Settings) -> None:
    for name, sql in _PARITY_QUERIES.items():
        expected = sqlite_rows(sqlite_settings.sqlite_path, sql)
        assert expected == [tuple(row) for row in query(pg_settings, sql)], name
    # FTS5 also counts the separator token between a movie's titles; PostgreSQL skips a position.
    vocabulary = sqlite_rows(
        sqlite_settings.sqlite_path,
        f"SELECT term, doc FROM title_vocab WHERE term <> '{TITLE_SEPARATOR}'",
    )
    assert sorted(vocabulary) == query(pg_settings, "SELECT word, docs FROM title_words ORDER BY 1")


# -- the same catalog as on SQLite --------------------------------------------------------------


def test_small_catalog_matches_the_sqlite_import(
    small_settings: Settings, small_pg_settings: Settings
) -> None:
    """Ids, every column, ranks, alternate titles, genres and words equal the SQLite import's."""
    assert_same_catalog(small_settings, small_pg_settings)


@pytest.mark.slow
def test_sample_matches_the_sqlite_import(
    sample_settings: Settings, sample_pg_settings: Settings
) -> None:
    """All 58,788 sample movies arrive as on SQLite: same ids, columns, ranks and words."""
    assert [(58_788, 58_788, 1, 58_788, 58_788)] == query(
        sample_pg_settings,
        "SELECT count(*), count(DISTINCT search_rank), min(search_rank), max(search_rank), "
        "max(id) FROM movies",
    )
    assert [(32710, "The Matrix", 1999, "the matrix")] == query(
        sample_pg_settings,
        "SELECT id, title, year, norm_title FROM movies WHERE source_key = 'ggplot2movies:32710'",
    )
    assert_same_catalog(sample_settings, sample_pg_settings)


def test_ranks_are_one_to_n_by_votes_then_rating(small_pg_settings: Settings) -> None:
    """search_rank numbers the movies 1..N by votes, then rating (none last), then id."""
    rows = query(small_pg_settings, "SELECT search_rank, votes, rating, id FROM movies")
    by_popularity = sorted(rows, key=lambda r: (-r[1], r[2] is None, -(r[2] or 0), r[3]))
    assert list(range(1, 31)) == [r[0] for r in by_popularity]


# -- columns written for PostgreSQL ---------------------------------------------------------------


def test_title_tsv_is_the_marker_then_the_normalized_words(small_pg_settings: Settings) -> None:
    """title_tsv holds '^' at position 1, normalize's words from position 2 on, then each
    alternate title's words after one skipped position (the separator's on SQLite)."""
    rows = query(
        small_pg_settings,
        "SELECT title_tsv::text, title_tsv = %s::tsvector, norm_title, alt_norm_titles "
        "FROM movies WHERE source_key = 'imdb:tt0000017'",
        ("'^':1 'leon':2 'the':3 'professional':4 'leon':6",),
    )
    expected = ("'^':1 'leon':2,6 'professional':4 'the':3", True, "leon the professional", "leon")
    assert [expected] == rows


def test_title_tsvector_escapes_quotes_and_backslashes(small_pg_settings: Settings) -> None:
    """A literal with ' and \\ (normalize never makes them) still parses into those words."""
    literal = title_tsvector("don't back\\slash")
    assert "'^':1 'don''t':2 'back\\\\slash':3" == literal
    assert [(["^", "back\\slash", "don't"],)] == query(
        small_pg_settings, "SELECT tsvector_to_array(%s::tsvector)", (literal,)
    )
    assert "'^':1 'ok':3" == title_tsvector("x" * 3000 + " ok")
    assert "'^':1" == title_tsvector("")


def test_title_words_count_the_titles_holding_each_word(small_pg_settings: Settings) -> None:
    """title_words has every word of the title index (alternate titles too) once, with the
    number of movies whose titles contain it."""
    documents = query(small_pg_settings, "SELECT norm_title, alt_norm_titles FROM movies")
    expected = Counter(
        word for title, alts in documents for word in indexed_words(title, split_alt_titles(alts))
    )
    actual = dict(query(small_pg_settings, "SELECT word, docs FROM title_words"))
    assert dict(expected) == actual
    assert 5 == actual["the"]


def test_title_words_are_what_ts_stat_counts_in_the_tsvectors(
    small_pg_settings: Settings,
) -> None:
    """title_words, counted in Python during the import, equals the server's own count of
    the stored tsvectors' lexemes (ts_stat's ndoc, the start marker left out)."""
    server = query(
        small_pg_settings,
        "SELECT word, ndoc FROM ts_stat('SELECT title_tsv FROM movies') WHERE word <> '^'",
    )
    assert sorted(server) == query(small_pg_settings, "SELECT word, docs FROM title_words")


def test_columns_of_a_movie(small_pg_settings: Settings) -> None:
    """Ratings, genres, genre bits, original title and alternate titles land in their columns."""
    rows = query(
        small_pg_settings,
        "SELECT m.title, m.original_title, m.rating, m.votes, m.genres, m.genre_mask, "
        "m.word_key, m.import_id, array_agg(a.title) FROM movies AS m "
        "JOIN alt_titles AS a ON a.movie_id = m.id WHERE m.source_key = 'imdb:tt0000004' "
        "GROUP BY m.id",
    )
    bits = dict(query(small_pg_settings, "SELECT name, bit FROM genres"))
    mask = (1 << bits["Comedy"]) | (1 << bits["Romance"])
    assert [
        (
            "Amélie",
            "Le fabuleux destin d'Amélie Poulain",
            8.3,
            780_000,
            "Comedy,Romance",
            mask,
            "amelie",
            1,
            ["Le fabuleux destin d'Amélie Poulain"],
        )
    ] == rows
    assert [(None, None, 0, "", 0)] == query(
        small_pg_settings,
        "SELECT year, rating, votes, genres, genre_mask FROM movies "
        "WHERE source_key = 'imdb:tt0000020'",
    )


# -- the swap ---------------------------------------------------------------------------------


def test_swap_keeps_the_migrations_names_and_definitions(
    postgres_databases: Databases, imdb_writer: Any
) -> None:
    """After imports, indexes, constraints and the id sequence are exactly as migrated."""
    settings = fresh(postgres_databases, "names")
    upgrade_schema(settings)
    migrated = schema_state(settings)

    import_imdb(settings, list(imdb_writer().values()))
    import_imdb(settings, list(imdb_writer().values()))

    assert migrated == schema_state(settings)
    assert [] == query(settings, "SELECT relname FROM pg_class WHERE relname LIKE '%staging%'")
    assert [("public.movies_id_seq",)] == migrated["sequence"]


def test_swap_copies_privileges_and_storage_parameters(
    postgres_databases: Databases, imdb_writer: Any
) -> None:
    """A read-only search role keeps SELECT on the catalog; a tuned fillfactor stays set."""
    settings = small_catalog(postgres_databases, "grants", imdb_writer)
    role = f"rs_test_reader_{os.getpid()}"
    with connect(settings) as conn:
        conn.execute(f'DROP ROLE IF EXISTS "{role}"')
        conn.execute(f'CREATE ROLE "{role}"')
    try:
        with connect(settings) as conn:
            for table in SWAPPED:
                conn.execute(f'GRANT SELECT ON {table} TO "{role}"')
            conn.execute("ALTER TABLE movies SET (fillfactor = 90, autovacuum_enabled = off)")

        import_imdb(settings, list(imdb_writer().values()))

        assert [(True, True, True, True)] == query(
            settings,
            "SELECT " + ", ".join(f"has_table_privilege(%s, '{t}', 'SELECT')" for t in SWAPPED),
            (role,) * len(SWAPPED),
        )
        assert [(["fillfactor=90", "autovacuum_enabled=off"],)] == query(
            settings, "SELECT reloptions FROM pg_class WHERE oid = 'movies'::regclass"
        )
    finally:
        with connect(settings) as conn:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


def test_reimport_keeps_ids_drops_missing_titles_and_continues_the_sequence(
    postgres_databases: Databases, imdb_writer: Any, small_titles: list[Any]
) -> None:
    """Ids of titles seen again stay; missing ones go; new ones get ids after every old one."""
    settings = small_catalog(postgres_databases, "reimport", imdb_writer)
    before = {m[1]: m[0] for m in catalog_state(settings)["movies"]}
    titles = [t for t in small_titles if t[0] != "tt0000013"]
    titles.append(("tt0000099", "movie", "Brand New", "Brand New", "2024", "99", "Drama", 6.0, 9))

    report = import_imdb(settings, list(imdb_writer(titles).values()))

    state = catalog_state(settings)
    after = {m[1]: m[0] for m in state["movies"]}
    assert 2 == report.catalog_version
    assert {k: v for k, v in before.items() if k != "imdb:tt0000013"} == {
        k: v for k, v in after.items() if k != "imdb:tt0000099"
    }
    assert 31 == after["imdb:tt0000099"]
    assert list(range(1, 31)) == sorted(m[14] for m in state["movies"])
    # The identity carries on: a row inserted without an id gets the next one.
    with connect(settings) as conn:
        conn.execute("BEGIN")
        (next_id,) = conn.execute(
            "INSERT INTO movies (source_key, title, norm_title, word_key, title_tsv, updated_at) "
            "VALUES ('x:1', 'X', 'x', 'x', '''^'':1', '') RETURNING id"
        ).fetchone()  # type: ignore[misc]
        conn.execute("ROLLBACK")
    assert 32 == next_id


def test_first_import_of_one_movie_moves_the_sequence_past_it(
    postgres_databases: Databases,
) -> None:
    """Even a one-movie catalog in a fresh database leaves the identity after id 1."""
    settings = fresh(postgres_databases, "one")

    with open_import(settings, "test") as job:
        job.add_movies([MovieRecord(source_key="t:1", title="Alone")])

    assert [(1, 2)] == query(
        settings, "SELECT max(id), nextval(pg_get_serial_sequence('movies', 'id')) FROM movies"
    )


def test_reimport_moves_updated_at_of_changed_titles_only(
    postgres_databases: Databases, imdb_writer: Any, small_titles: list[Any]
) -> None:
    """A changed title gets a new updated_at; unchanged ones (same files) keep theirs."""
    settings = small_catalog(postgres_databases, "updated", imdb_writer)
    with connect(settings) as conn:
        conn.execute("UPDATE movies SET updated_at = %s", (SENTINEL,))
    titles = [
        (*t[:2], "Heat (Director's Cut)", *t[3:]) if t[0] == "tt0000014" else t
        for t in small_titles
    ]

    import_imdb(settings, list(imdb_writer(titles).values()))
    changed = [m[2] for m in catalog_state(settings)["movies"] if m[16] != SENTINEL]
    import_imdb(settings, list(imdb_writer(titles).values()))
    unchanged = [m[2] for m in catalog_state(settings)["movies"] if m[16] != SENTINEL]

    assert ["Heat (Director's Cut)"] == changed
    assert changed == unchanged


def test_replace_false_keeps_movies_the_import_did_not_see(
    postgres_databases: Databases, imdb_writer: Any
) -> None:
    """replace=False adds and updates movies; the rest stay with their ids and alternate titles."""
    settings = small_catalog(postgres_databases, "keep", imdb_writer)
    before = catalog_state(settings)

    with PostgresCatalogImport(settings, "extra", replace=False) as job:
        job.add_movies(
            [
                MovieRecord(source_key="extra:1", title="Brand New", votes=5_000_000),
                MovieRecord(source_key="imdb:tt0000030", title="Star", votes=300),
            ]
        )

    after = catalog_state(settings)
    assert [m[:2] for m in before["movies"]] + [(31, "extra:1")] == [m[:2] for m in after["movies"]]
    assert before["alt_titles"] == after["alt_titles"]
    assert [(31, 1, 2)] == [(m[0], m[14], m[15]) for m in after["movies"] if m[14] == 1]
    assert list(range(1, 32)) == sorted(m[14] for m in after["movies"])
    star = next(m for m in after["movies"] if m[1] == "imdb:tt0000030")
    assert (None, None, 300, "", 2) == (star[4], star[6], star[7], star[8], star[15])


def test_a_key_read_twice_keeps_its_last_row_in_its_first_place(
    postgres_databases: Databases, tmp_path: Path
) -> None:
    """As SQLite's upsert: the last row's data, the id of the first appearance."""
    records = [
        MovieRecord(source_key="t:1", title="First", votes=1),
        MovieRecord(source_key="t:2", title="Other", votes=2),
        MovieRecord(source_key="t:1", title="Second", votes=3, alt_titles=("Alt",)),
    ]
    on_sqlite = Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}")
    on_postgres = fresh(postgres_databases, "dupes")

    for settings in (on_sqlite, on_postgres):
        with open_import(settings, "test") as job:
            job.add_movies([dataclasses.replace(r) for r in records])
        assert 3 == job.report.movies_written

    expected = sqlite_rows(on_sqlite.sqlite_path, _PARITY_QUERIES["movies"])
    assert [(1, "t:1", "Second"), (2, "t:2", "Other")] == [m[:3] for m in expected]
    assert expected == [tuple(m) for m in query(on_postgres, _PARITY_QUERIES["movies"])]
    assert [(1, "Alt", "alt")] == query(on_postgres, _PARITY_QUERIES["alt_titles"])


def test_nul_characters_are_dropped_from_titles(postgres_databases: Databases) -> None:
    """PostgreSQL text cannot hold NUL, so it is removed rather than failing the import."""
    settings = fresh(postgres_databases, "nul")

    with open_import(settings, "test") as job:
        job.add_movies([MovieRecord(source_key="t:1", title="Nul\x00Title", original_title="\x00")])
        job.add_alt_titles([("t:1", "Alt\x00Title")])

    assert [("NulTitle", "", "AltTitle")] == query(
        settings,
        "SELECT m.title, m.original_title, a.title FROM movies AS m JOIN alt_titles AS a "
        "ON a.movie_id = m.id",
    )


# -- failures leave the old catalog ------------------------------------------------------------


@pytest.mark.parametrize(
    "error", [ImportFailed("reader gave up"), RuntimeError("disk on fire")], ids=repr
)
def test_exception_inside_the_import_rolls_everything_back(
    postgres_databases: Databases, imdb_writer: Any, error: Exception
) -> None:
    """An exception midway (after rows were copied) leaves the old catalog; the next import runs."""
    settings = small_catalog(postgres_databases, f"raise_{type(error).__name__}", imdb_writer)
    before = catalog_state(settings)

    def records() -> Iterator[MovieRecord]:
        for n in range(55):
            yield MovieRecord(source_key=f"test:{n}", title=f"Matrix {n}", genres=("New",))
        raise error

    with pytest.raises(type(error)) as raised, PostgresCatalogImport(settings, "test") as job:
        job.add_alt_titles([("imdb:tt0000001", "Matrix Alt")])
        job.add_movies(records())

    assert before == catalog_state(settings)
    if isinstance(error, ImportFailed):
        assert job.report is raised.value.report
    with PostgresCatalogImport(settings, "test") as job:
        job.add_movies([MovieRecord(source_key="test:ok", title="Fine")])
    assert (2, 1) == (job.report.catalog_version, len(catalog_state(settings)["movies"]))


def test_a_reader_failing_while_the_movies_are_ranked_leaves_the_old_catalog(
    postgres_databases: Databases, imdb_writer: Any
) -> None:
    """Alternate titles are read while the server ranks the movies in a thread: a reader
    error then cancels the ranking, the old catalog stays, and the next import runs."""
    settings = small_catalog(postgres_databases, "alt_reader_fails", imdb_writer)
    before = catalog_state(settings)

    def akas() -> Iterator[tuple[str, str]]:
        yield "test:1", "Another Title"
        raise BadFileFormat("title.akas.tsv.gz: line 3: not UTF-8 text")

    with pytest.raises(BadFileFormat), PostgresCatalogImport(settings, "test") as job:
        job.add_movies(MovieRecord(source_key=f"test:{n}", title=f"Film {n}") for n in range(50))
        job.add_alt_titles(akas())

    assert before == catalog_state(settings)
    with PostgresCatalogImport(settings, "test") as job:
        job.add_movies([MovieRecord(source_key="test:ok", title="Fine")])
        job.add_alt_titles([("test:ok", "Fine Again")])
    assert [("Fine", "Fine Again")] == query(
        settings,
        "SELECT m.title, a.title FROM movies AS m JOIN alt_titles AS a ON a.movie_id = m.id",
    )


def test_movies_added_after_alternate_titles_are_ranked_with_the_others(
    postgres_databases: Databases,
) -> None:
    """The ranking done while alternate titles were read is redone when more movies come:
    the catalog is the one the same movies and titles make in the usual order."""
    first = [MovieRecord(source_key=f"t:{n}", title=f"Film {n}", votes=n) for n in range(1, 6)]
    later = [MovieRecord(source_key=f"t:{n}", title=f"Movie {n}", votes=n) for n in range(6, 9)]
    akas = [("t:2", "Zweiter Film"), ("t:7", "Septieme Film")]
    catalogs = []
    for name, steps in {
        "usual": [first + later, akas],
        "late": [first, akas, later],
    }.items():
        settings = fresh(postgres_databases, f"late_movies_{name}")
        with PostgresCatalogImport(settings, "test") as job:
            for step in steps:
                if step is akas:
                    job.add_alt_titles(step)
                else:
                    job.add_movies(step)  # type: ignore[arg-type]
        catalogs.append(
            query(
                settings,
                "SELECT id, source_key, title, search_rank, alt_norm_titles, title_tsv::text "
                "FROM movies ORDER BY id",
            )
        )
    assert catalogs[0] == catalogs[1]
    assert (8, 2, "septieme film") == (
        len(catalogs[1]),
        catalogs[1][6][3],
        catalogs[1][6][4],
    )


def test_an_index_build_failing_beside_the_word_index_leaves_the_old_catalog(
    postgres_databases: Databases, imdb_writer: Any
) -> None:
    """The indexes are built in a thread while Python builds the word index: a unique index
    (one a DBA added) that the new rows break fails the import there; nothing changes."""
    settings = small_catalog(postgres_databases, "index_fails", imdb_writer)
    with connect(settings) as conn:
        conn.execute(
            "CREATE UNIQUE INDEX ix_one_dup_per_kind ON movies (kind) WHERE title LIKE 'Dup%'"
        )
    before = catalog_state(settings), schema_state(settings)

    with (
        pytest.raises(ImportFailed, match="could not create unique index") as raised,
        PostgresCatalogImport(settings, "test") as job,
    ):
        job.add_movies([MovieRecord(source_key=f"t:{n}", title=f"Dup {n}") for n in range(2)])

    assert raised.value.report is job.report
    assert before == (catalog_state(settings), schema_state(settings))


def _truncated_dump(directory: Path) -> list[Path]:
    rows = "".join(
        f"tt{n:07d}\tmovie\tFilm Number {n}\tFilm Number {n}\t0\t2000\t\\N\t90\tDrama\n"
        for n in range(1, 20_001)
    )
    header = "tconst\ttitleType\tprimaryTitle\toriginalTitle\tisAdult\tstartYear\tendYear\t"
    data = gzip.compress((header + "runtimeMinutes\tgenres\n" + rows).encode(), mtime=0)
    path = directory / "title.basics.tsv.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    return [path]


def _csv_as_basics(directory: Path) -> list[Path]:
    path = directory / "title.basics.tsv"
    path.write_text("movieId,title,genres\n1,Heat (1995),Action\n", encoding="utf-8")
    return [path]


@pytest.mark.parametrize(
    ("make_files", "error"),
    [(_truncated_dump, ImportFailed), (_csv_as_basics, BadFileFormat)],
    ids=["truncated-gzip", "csv-as-basics"],
)
def test_malformed_file_leaves_the_old_catalog(
    postgres_databases: Databases,
    imdb_writer: Any,
    tmp_path: Path,
    make_files: Any,
    error: type[Exception],
) -> None:
    """A dump cut off midway or in the wrong format fails the import; nothing changes."""
    settings = small_catalog(postgres_databases, f"bad_{make_files.__name__}", imdb_writer)
    before = catalog_state(settings)

    with pytest.raises(error):
        import_imdb(settings, make_files(tmp_path))

    assert before == catalog_state(settings)


def test_database_errors_become_import_failed(postgres_databases: Databases) -> None:
    """A value PostgreSQL refuses (votes beyond INTEGER) fails as ImportFailed with the report."""
    settings = fresh(postgres_databases, "refused")

    with (
        pytest.raises(ImportFailed, match="integer out of range") as raised,
        open_import(settings, "test") as job,
    ):
        job.add_movies([MovieRecord(source_key="t:1", title="Too Popular", votes=2**32 + 5)])

    assert raised.value.report is job.report
    assert [("changes_from", "0"), ("version", "0")] == query(
        settings, "SELECT key, value FROM catalog_meta ORDER BY key"
    )


def test_more_than_63_genres_fail(postgres_databases: Databases) -> None:
    """Genre bits live in a BIGINT: a 64th distinct genre fails the import, as on SQLite."""
    settings = fresh(postgres_databases, "genres")

    with pytest.raises(ImportFailed, match="more than 63"), open_import(settings, "t") as job:
        job.add_movies(
            [MovieRecord(source_key=f"t:{n}", title="G", genres=(f"g{n}",)) for n in range(64)]
        )

    assert [] == query(settings, "SELECT * FROM genres")


# -- searches meanwhile ---------------------------------------------------------------------------


def _read(conn: psycopg.Connection[Any]) -> tuple[int, int, str]:
    """Movies, title words and the catalog version, as a search connection sees them."""
    (movies,) = conn.execute("SELECT count(*) FROM movies").fetchone()  # type: ignore[misc]
    (words,) = conn.execute("SELECT count(*) FROM title_words").fetchone()  # type: ignore[misc]
    (version,) = conn.execute(  # type: ignore[misc]
        "SELECT value FROM catalog_meta WHERE key = 'version'"
    ).fetchone()
    return movies, words, version


def test_readers_see_the_old_catalog_until_commit_then_the_new(
    postgres_databases: Databases, imdb_writer: Any, paused_import: Any
) -> None:
    """While an import runs, other connections see the old catalog; after COMMIT, the new one."""
    settings = small_catalog(postgres_databases, "readers", imdb_writer)
    with connect(settings) as reader, paused_import(settings) as job:
        old = _read(reader)
        job.start()
        during = _read(reader)
        job.finish()
        new = _read(reader)

    assert (30, "1") == (old[0], old[2])
    assert old == during
    assert (200, 201, "2") == new


def _wait_for_swap(settings: Settings, timeout: float = 30) -> None:
    """Until the import's connection is in the swap step (taking or retrying the locks)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = query(
            settings,
            "SELECT query FROM pg_stat_activity WHERE application_name = 'reelsearch import'",
        )
        if any("LOCK TABLE" in q or q.startswith("ROLLBACK TO SAVEPOINT") for (q,) in rows):
            return
        time.sleep(0.01)
    raise AssertionError("the import never reached the swap")


def test_a_reader_holding_the_tables_delays_the_swap_not_the_other_way(
    postgres_databases: Databases, imdb_writer: Any
) -> None:
    """A long read transaction keeps its snapshot; the import waits, then commits after it."""
    settings = small_catalog(postgres_databases, "delay", imdb_writer)
    failures: list[BaseException] = []

    def run_import() -> None:
        try:
            job = PostgresCatalogImport(settings, "test")
            job.swap_lock_timeout = 0.05
            with job:
                job.add_movies([MovieRecord(source_key="test:1", title="Only One")])
        except BaseException as exc:  # surfaced by the assertion below
            failures.append(exc)

    writer = threading.Thread(target=run_import)
    with psycopg.connect(settings.postgres_dsn) as holder, connect(settings) as other:
        holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        first = _read(holder)
        writer.start()
        try:
            _wait_for_swap(settings)
            held = _read(holder)
            # Others are not stuck behind the waiting import for more than a moment.
            started = time.monotonic()
            meanwhile = _read(other)
            waited = time.monotonic() - started
            alive = writer.is_alive()
        finally:
            holder.rollback()
            writer.join(60)
        after = _read(other)

    assert [] == failures
    assert first == held == meanwhile
    assert waited < 2
    assert alive
    assert (1, "2") == (after[0], after[2])


def test_swap_gives_up_when_readers_hold_the_tables_too_long(
    postgres_databases: Databases, imdb_writer: Any
) -> None:
    """Past swap_patience the import fails and rolls back instead of waiting forever."""
    settings = small_catalog(postgres_databases, "patience", imdb_writer)
    before = catalog_state(settings)

    with psycopg.connect(settings.postgres_dsn) as holder:
        holder.execute("SELECT count(*) FROM movie_genres")
        job = PostgresCatalogImport(settings, "test")
        job.swap_lock_timeout, job.swap_patience = 0.05, 0.5
        with pytest.raises(ImportFailed, match="held the catalog tables"), job:
            job.add_movies([MovieRecord(source_key="test:1", title="Only One")])
        holder.rollback()

    assert before == catalog_state(settings)


def test_a_second_import_waits_for_the_first_then_builds_on_it(
    postgres_databases: Databases, imdb_writer: Any
) -> None:
    """Imports are serialized: the second waits for the first's COMMIT and gets the next version."""
    settings = small_catalog(postgres_databases, "serial", imdb_writer)
    midway, resume = threading.Event(), threading.Event()
    reports: dict[str, Any] = {}

    def records(name: str) -> Iterator[MovieRecord]:
        yield MovieRecord(source_key=f"{name}:1", title=name)
        if name == "first":
            midway.set()
            resume.wait(30)

    def run_import(name: str) -> None:
        job = PostgresCatalogImport(settings, name)
        job.import_lock_timeout = 30
        try:
            with job:
                job.add_movies(records(name))
        except BaseException as exc:  # surfaced by the assertion below
            reports[name] = exc
        else:
            reports[name] = job.report.catalog_version

    first = threading.Thread(target=run_import, args=("first",))
    second = threading.Thread(target=run_import, args=("second",))
    first.start()
    try:
        assert midway.wait(30)
        second.start()
        deadline = time.monotonic() + 30
        while not query(
            settings,
            "SELECT 1 FROM pg_stat_activity WHERE application_name = 'reelsearch import' "
            "AND wait_event_type = 'Lock'",
        ):
            assert time.monotonic() < deadline, "the second import never waited"
            time.sleep(0.01)
    finally:
        resume.set()
        first.join(60)
        if second.ident is not None:
            second.join(60)

    assert {"first": 2, "second": 3} == reports
    # Ids are never reused: the second import continues after the first one's 31.
    assert [(32, "second:1")] == [m[:2] for m in catalog_state(settings)["movies"]]


def test_a_second_import_gives_up_after_the_lock_timeout(
    postgres_databases: Databases, imdb_writer: Any
) -> None:
    """While another import holds the catalog, a new one fails after import_lock_timeout."""
    settings = small_catalog(postgres_databases, "busy", imdb_writer)

    with psycopg.connect(settings.postgres_dsn) as holder:
        holder.execute("SELECT value FROM catalog_meta WHERE key = 'version' FOR UPDATE")
        job = PostgresCatalogImport(settings, "test")
        job.import_lock_timeout = 0.1
        with pytest.raises(ImportFailed, match="another import is running"):
            job.__enter__()
        holder.rollback()


def test_prepared_statements_keep_working_across_the_swap(
    postgres_databases: Databases, imdb_writer: Any, small_titles: list[Any]
) -> None:
    """asyncpg statements prepared on the old tables run on the new ones (PostgreSQL re-plans)."""
    settings = small_catalog(postgres_databases, "prepared", imdb_writer)
    files = list(imdb_writer([t for t in small_titles if t[0] != "tt0000015"]).values())

    async def run() -> tuple[list[str], list[str]]:
        conn = await asyncpg.connect(settings.postgres_dsn)
        try:
            top = await conn.prepare(
                "SELECT title FROM movies WHERE search_rank <= $1 ORDER BY search_rank"
            )
            before = [r["title"] for r in await top.fetch(2)]
            await asyncio.to_thread(import_imdb, settings, files)
            return before, [r["title"] for r in await top.fetch(2)]
        finally:
            await conn.close()

    before, after = asyncio.run(run())
    assert ["Interstellar", "The Matrix"] == before
    assert ["The Matrix", "Se7en"] == after


def test_open_import_picks_the_writer_of_the_backend(tmp_path: Path) -> None:
    """open_import gives the PostgreSQL writer for postgresql URLs and CatalogImport otherwise."""
    postgres = Settings(database_url="postgresql+asyncpg://postgres@127.0.0.1:5432/x")
    sqlite = Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}")

    assert isinstance(open_import(postgres, "s"), PostgresCatalogImport)
    assert isinstance(open_import(sqlite, "s", replace=False), CatalogImport)
