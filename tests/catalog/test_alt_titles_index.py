"""Alternate and original titles in the title index, on SQLite and PostgreSQL alike.

Real imports into real databases: the ``alt_norm_titles`` rule, the FTS5
document and the tsvector layout (no phrase across two titles), the word
counts, the SQL-built tsvector against the Python one on every row,
re-imports, migration 0002 on a catalog built at 0001, and the write-back.
"""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pytest

from reelsearch.catalog.imdb_generate import write_imdb_dataset
from reelsearch.catalog.importers.imdb import import_imdb
from reelsearch.catalog.records import MovieRecord
from reelsearch.catalog.repository import upsert_movies
from reelsearch.catalog.schema import migrate_schema, upgrade_schema
from reelsearch.catalog.titles import (
    MAX_ALT_TITLES,
    joined_alt_titles,
    other_titles,
    split_alt_titles,
    title_document,
)
from reelsearch.catalog.tsvector import indexed_words, is_indexable, title_tsvector
from reelsearch.catalog.writer import open_import
from reelsearch.config import Settings
from reelsearch.db import reuse_connection
from reelsearch.search.normalize import JOINED_TITLES, TITLE_SEPARATOR, normalize

Databases = Callable[[str], str]
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]

# tconst | title | original title ("=" same) | votes
_TITLES = [
    ("tt0000101", "Spider Man", "=", 9000),
    ("tt0000102", "Amélie", "Le fabuleux destin d'Amélie Poulain", 8000),
    ("tt0000103", "2000 Maniacs", "Two Thousand Maniacs!", 7000),
    ("tt0000104", "Many Names", "=", 6000),
    ("tt0000105", "Plain", "=", 5000),
    ("tt0000106", "Long Words", "=", 4000),
]
MANY = [f"Name {n:02d}" for n in range(40)]
LONG_WORD = "x" * 3000
_AKAS = [
    ("tt0000101", "El Hombre"),
    ("tt0000101", "EL HOMBRE"),  # the same normalized title: once in the document
    ("tt0000101", "Spider-Man"),  # normalizes to the title itself: left out
    ("tt0000101", "!!!"),  # normalizes to nothing: left out
    ("tt0000101", "a z"),  # code point order: "a z" < "ab" < "el hombre"
    ("tt0000101", "ab"),
    ("tt0000102", "Le fabuleux destin d'Amélie Poulain"),  # also its original title
    ("tt0000102", "Amelie"),
    ("tt0000106", f"{LONG_WORD} short"),  # a word no tsvector can hold, then one it can
    *[("tt0000104", title) for title in reversed(MANY)],
]


TITLES = [
    (tconst, "movie", title, title if original == "=" else original, "2000", "90", "Drama", 7.0,
     votes)
    for tconst, title, original, votes in _TITLES
]  # fmt: skip


def imdb_files(imdb_writer: Any, akas: list[tuple[str, str]] = _AKAS) -> list[Path]:
    """IMDb dumps of TITLES and ``akas``, in a new folder."""
    return list(imdb_writer(TITLES, akas).values())


def settings_on(
    backend: str, postgres_databases: Databases | None, name: str, tmp: Path
) -> Settings:
    if backend == "sqlite":
        return Settings(database_url=f"sqlite:///{tmp / f'{name}.db'}")
    assert postgres_databases is not None
    return Settings(database_url=postgres_databases(f"alt_{name}"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def new_settings(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[[str], Settings]:
    """``new_settings(name)``: an empty catalog on the test's backend."""
    databases = request.getfixturevalue("postgres_databases") if backend == "postgresql" else None
    return lambda name: settings_on(backend, databases, name, tmp_path)


@pytest.fixture
def imported(new_settings: Callable[[str], Settings], imdb_writer: Any) -> Settings:
    """The titles and akas above, imported from IMDb dumps."""
    settings = new_settings("imported")
    import_imdb(settings, imdb_files(imdb_writer))
    return settings


def rows(settings: Settings, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` (``?`` placeholders) on either backend."""
    if settings.backend == "sqlite":
        conn = sqlite3.connect(settings.sqlite_path)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as pg:
        return [tuple(r) for r in pg.execute(sql.replace("?", "%s"), params or None).fetchall()]


def alt_norm_titles(settings: Settings, tconst: str) -> str | None:
    [(value,)] = rows(
        settings, "SELECT alt_norm_titles FROM movies WHERE source_key = ?", (f"imdb:{tconst}",)
    )
    return value  # type: ignore[no-any-return]


def matches(settings: Settings, fts5: str, tsquery: str) -> list[str]:
    """Source keys of the movies whose title index matches (FTS5 or tsquery syntax)."""
    if settings.backend == "sqlite":
        sql = (
            "SELECT m.source_key FROM title_fts "
            "JOIN movies AS m ON m.search_rank = title_fts.rowid "
            "WHERE title_fts MATCH ? ORDER BY 1"
        )
        return [r[0] for r in rows(settings, sql, (fts5,))]
    sql = "SELECT source_key FROM movies WHERE title_tsv @@ ?::tsquery ORDER BY 1"
    return [r[0] for r in rows(settings, sql, (tsquery,))]


def vocabulary(settings: Settings) -> dict[str, int]:
    """Word -> number of movies whose title index holds it.

    Without FTS5's separator token, and without words too long for a tsvector:
    FTS5 keeps those, PostgreSQL cannot (searching one is a 400 on both).
    """
    sql = (
        "SELECT term, doc FROM title_vocab"
        if settings.backend == "sqlite"
        else "SELECT word, docs FROM title_words"
    )
    return {
        word: docs
        for word, docs in rows(settings, sql)
        if word != TITLE_SEPARATOR and is_indexable(word)
    }


def expected_vocabulary(settings: Settings) -> dict[str, int]:
    documents = rows(settings, "SELECT norm_title, alt_norm_titles FROM movies")
    return dict(
        Counter(
            w for title, alts in documents for w in indexed_words(title, split_alt_titles(alts))
        )
    )


def assert_index_consistent(settings: Settings) -> None:
    """Every movie's alt_norm_titles follows the rule, and its index entry and words match it."""
    alternates: dict[int, list[str]] = {}
    for movie_id, norm in rows(settings, "SELECT movie_id, norm_title FROM alt_titles"):
        alternates.setdefault(movie_id, []).append(norm)
    movies = rows(settings, "SELECT id, norm_title, alt_norm_titles FROM movies ORDER BY id")
    expected = [(i, t, joined_alt_titles(t, alternates.get(i, []))) for i, t, _ in movies]
    assert expected == movies
    assert expected_vocabulary(settings) == vocabulary(settings)
    if settings.backend == "postgresql":
        assert_python_tsvector_everywhere(settings)
    else:
        separators = sum(1 for *_, alts in movies if alts is not None)
        found = rows(settings, "SELECT doc FROM title_vocab WHERE term = ?", (TITLE_SEPARATOR,))
        assert ([(separators,)] if separators else []) == found


def assert_python_tsvector_everywhere(settings: Settings) -> None:
    """title_tsv of every row, as the import wrote it, == catalog/tsvector.py's literal."""
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        stored = conn.execute(
            "SELECT norm_title, alt_norm_titles, title_tsv::text FROM movies ORDER BY id"
        ).fetchall()
        literals = [title_tsvector(t, split_alt_titles(alts)) for t, alts, _ in stored]
        parsed = conn.execute(
            "SELECT t::tsvector::text FROM unnest(%s::text[]) WITH ORDINALITY AS u (t, n) "
            "ORDER BY n",
            (literals,),
        ).fetchall()
    assert [row[0] for row in parsed] == [tsv for *_, tsv in stored]


# -- the rule -------------------------------------------------------------------------------


def test_joined_alt_titles_dedupes_drops_the_title_and_empties_sorts_and_caps() -> None:
    """The one rule: distinct, not empty, not the title, code point order, 32 at most."""
    assert None is joined_alt_titles("heat", ["heat", "", "heat"])
    assert JOINED_TITLES.join(["a z", "ab", "el hombre"]) == joined_alt_titles(
        "spider man", ["el hombre", "ab", "spider man", "", "a z", "el hombre"]
    )
    many = [normalize(t) for t in MANY]
    assert JOINED_TITLES.join(sorted(many)[:MAX_ALT_TITLES]) == joined_alt_titles("x", many)
    assert "spider man" + JOINED_TITLES + "el hombre" == title_document("spider man", "el hombre")
    assert "heat" == title_document("heat", None)
    assert [] == split_alt_titles(None)


def test_other_titles_are_the_original_and_alternates_but_not_the_title() -> None:
    """The original title counts as an alternate; the title itself and repeats do not."""
    record = MovieRecord("k", "Léon", original_title="Léon: The Professional",
                         alt_titles=("Léon", "Leon", "Léon: The Professional"))  # fmt: skip
    assert ["Léon: The Professional", "Leon"] == other_titles(record)
    assert [] == other_titles(MovieRecord("k", "Heat", original_title="Heat"))


def test_title_tsvector_skips_a_position_before_each_alternate() -> None:
    """Positions are FTS5's token positions + 1: the separator's position holds nothing."""
    assert "'^':1 'spider':2 'man':3 'el':5 'hombre':6 'ab':8" == title_tsvector(
        "spider man", ["el hombre", "ab"]
    )
    assert "'^':1 'el':3" == title_tsvector("", ["el"])
    assert "'^':1 'a':2 'short':5" == title_tsvector("a", [f"{LONG_WORD} short"])
    assert {"spider", "man", "el"} == indexed_words("spider man", ["el", LONG_WORD])


# -- after an import, on both backends ------------------------------------------------------------


def test_alt_norm_titles_of_imported_movies(imported: Settings) -> None:
    """Deduplicated by normalized form, without the title or empty ones, sorted, capped at 32;
    an original title is an alternate even when no aka lists it; NULL when there is none."""
    assert JOINED_TITLES.join(["a z", "ab", "el hombre"]) == alt_norm_titles(imported, "tt0000101")
    assert "le fabuleux destin damelie poulain" == alt_norm_titles(imported, "tt0000102")
    assert "two thousand maniacs" == alt_norm_titles(imported, "tt0000103")
    many = alt_norm_titles(imported, "tt0000104")
    assert sorted(normalize(t) for t in MANY)[:MAX_ALT_TITLES] == split_alt_titles(many)
    assert None is alt_norm_titles(imported, "tt0000105")
    assert [("Two Thousand Maniacs!",)] == rows(
        imported,
        "SELECT a.title FROM alt_titles AS a JOIN movies AS m ON m.id = a.movie_id "
        "WHERE m.source_key = 'imdb:tt0000103'",
    )
    assert_index_consistent(imported)


def test_alternate_titles_are_searchable_but_no_phrase_crosses_two_titles(
    imported: Settings,
) -> None:
    """A phrase matches inside one title only; '^' is still the start of the title itself."""
    spider = ["imdb:tt0000101"]
    assert spider == matches(imported, '"el hombre"', "'el' <-> 'hombre'")
    assert spider == matches(imported, '"spider man"', "'spider' <-> 'man'")
    assert [] == matches(imported, '"man" + "el"', "'man' <-> 'el'")
    assert [] == matches(imported, '"hombre" + "a"', "'hombre' <-> 'a'")
    assert spider == matches(imported, '^ "spider"', "'^' <-> 'spider'")
    assert [] == matches(imported, '^ "el"', "'^' <-> 'el'")
    assert ["imdb:tt0000103"] == matches(imported, "thousand", "'thousand'")
    assert ["imdb:tt0000106"] == matches(imported, "short", "'short'")


def test_word_counts_hold_alternate_title_words_once_per_movie(imported: Settings) -> None:
    """title_words / title_vocab count a movie once for a word in any of its titles."""
    words = vocabulary(imported)
    assert (1, 1, 1) == (words["hombre"], words["thousand"], words["name"])
    assert 1 == words["spider"]  # in the title and, as "spider man", nowhere else
    assert expected_vocabulary(imported) == words


@pytest.mark.postgres
def test_the_same_catalog_on_both_backends(
    postgres_databases: Databases, imdb_writer: Any, tmp_path: Path
) -> None:
    """SQLite and PostgreSQL import the same dumps into the same alt_norm_titles and words."""
    files = imdb_files(imdb_writer)
    on_sqlite = settings_on("sqlite", None, "parity", tmp_path)
    on_postgres = settings_on("postgresql", postgres_databases, "parity", tmp_path)
    import_imdb(on_sqlite, files)
    import_imdb(on_postgres, files)
    sql = "SELECT id, norm_title, alt_norm_titles FROM movies ORDER BY id"
    assert rows(on_sqlite, sql) == rows(on_postgres, sql)
    assert vocabulary(on_sqlite) == vocabulary(on_postgres)


@pytest.mark.postgres
def test_sql_tsvector_equals_the_python_one_on_a_generated_catalog(
    postgres_databases: Databases, tmp_path: Path
) -> None:
    """On 3,000 generated titles with their akas, every stored title_tsv equals the Python
    literal (the import writes those of movies with alternates from the alternates the
    server joined), and both backends agree on every alt_norm_titles and word count."""
    dataset = write_imdb_dataset(tmp_path / "gen", 3_000, seed=7)
    files = [dataset.basics, dataset.ratings, *([dataset.akas] if dataset.akas else [])]
    on_sqlite = settings_on("sqlite", None, "gen", tmp_path)
    on_postgres = settings_on("postgresql", postgres_databases, "gen", tmp_path)
    import_imdb(on_sqlite, files)
    import_imdb(on_postgres, files)
    [(with_alternates,)] = rows(
        on_postgres, "SELECT count(*) FROM movies WHERE alt_norm_titles IS NOT NULL"
    )
    assert with_alternates > 100
    assert_index_consistent(on_postgres)
    assert_index_consistent(on_sqlite)
    sql = "SELECT id, alt_norm_titles FROM movies ORDER BY id"
    assert rows(on_sqlite, sql) == rows(on_postgres, sql)


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("norm_title", "alternates"),
    [
        ("", []),
        ("", ["el hombre"]),
        ("spider man", ["a z", "el hombre"]),
        ("don't back\\slash", ["it's", "a\\b"]),
        (f"{LONG_WORD} ok", [LONG_WORD, f"{LONG_WORD} short", "x"]),
        ("tail " + LONG_WORD, ["next"]),
    ],
)
def test_the_sql_twin_of_title_tsvector_on_awkward_titles(
    small_pg_settings: Settings, norm_title: str, alternates: list[str]
) -> None:
    """Empty titles, quotes, backslashes and unindexable words: SQL and Python agree."""
    joined = JOINED_TITLES.join(alternates) or None
    [(from_sql, from_python)] = rows(
        small_pg_settings,
        "SELECT title_tsvector(?, ?)::text, ?::tsvector::text",
        (norm_title, joined, title_tsvector(norm_title, alternates)),
    )
    assert from_python == from_sql


def test_a_reimport_recomputes_alternates_and_the_index(
    imported: Settings, imdb_writer: Any
) -> None:
    """Akas gone or added in a new dump are gone or added in the index."""
    akas = [("tt0000105", "Simple"), ("tt0000101", "Hombre Arana")]
    import_imdb(imported, imdb_files(imdb_writer, akas))
    assert "hombre arana" == alt_norm_titles(imported, "tt0000101")
    assert "simple" == alt_norm_titles(imported, "tt0000105")
    assert None is alt_norm_titles(imported, "tt0000104")
    assert [] == matches(imported, '"el hombre"', "'el' <-> 'hombre'")
    assert ["imdb:tt0000105"] == matches(imported, "simple", "'simple'")
    assert_index_consistent(imported)


def test_an_import_that_keeps_the_catalog_adds_alternates_to_kept_movies(
    imported: Settings,
) -> None:
    """replace=False: a movie this import did not read still gains the alternates it names,
    through add_alt_titles after add_movies (as the sample importer calls it)."""
    with open_import(imported, "test", replace=False) as job:
        job.add_movies([MovieRecord("test:1", "New Film", alt_titles=("Nouveau Film",))])
        job.add_alt_titles([("imdb:tt0000105", "Simple"), ("test:1", "Neuer Film")])
    assert "simple" == alt_norm_titles(imported, "tt0000105")
    [(new,)] = rows(imported, "SELECT alt_norm_titles FROM movies WHERE source_key = 'test:1'")
    assert JOINED_TITLES.join(["neuer film", "nouveau film"]) == new
    assert ["imdb:tt0000105"] == matches(imported, "simple", "'simple'")
    assert_index_consistent(imported)


# -- migration 0002 -------------------------------------------------------------------------------


def write_at_0001(settings: Settings) -> None:
    """Two movies as an import at revision 0001 wrote them: one title per index document,
    the original title only in movies.original_title."""
    movies = [
        (1, "imdb:tt1", "Spider Man", None, "spider man", 1),
        (2, "imdb:tt2", "Amélie", "Le fabuleux destin d'Amélie Poulain", "amelie", 2),
    ]
    alternates = [(1, "El Hombre", "el hombre"), (1, "Spider-Man", "spider man")]
    if settings.backend == "sqlite":
        conn = sqlite3.connect(settings.sqlite_path)
        with conn:
            conn.executemany(
                "INSERT INTO movies (id, source_key, title, original_title, norm_title, "
                "search_rank, word_key, updated_at) VALUES (?, ?, ?, ?, ?, ?, '', '')",
                movies,
            )
            conn.executemany("INSERT INTO alt_titles VALUES (?, ?, ?, NULL, NULL)", alternates)
            conn.executemany(
                "INSERT INTO title_fts (rowid, norm_title) VALUES (?, ?)",
                [(rank, norm) for *_, norm, rank in movies],
            )
        conn.close()
        return
    with psycopg.connect(settings.postgres_dsn) as pg:
        pg.cursor().executemany(
            "INSERT INTO movies (id, source_key, title, original_title, norm_title, search_rank, "
            "word_key, updated_at, title_tsv) VALUES (%s, %s, %s, %s, %s, %s, '', '', %s)",
            [(*movie, title_tsvector(movie[4])) for movie in movies],
        )
        pg.cursor().executemany(
            "INSERT INTO alt_titles VALUES (%s, %s, %s, NULL, NULL)", alternates
        )
        pg.execute("INSERT INTO title_words VALUES ('spider', 1), ('man', 1), ('amelie', 1)")


def test_migration_0002_upgrades_a_catalog_built_at_0001(
    new_settings: Callable[[str], Settings],
) -> None:
    """The column is added, original titles become alternates, and the existing index is
    rebuilt in place with every movie's alternate titles."""
    settings = new_settings("at_0001")
    migrate_schema(settings, "0001")
    write_at_0001(settings)

    upgrade_schema(settings)

    assert [("el hombre",), ("le fabuleux destin damelie poulain",)] == rows(
        settings, "SELECT alt_norm_titles FROM movies ORDER BY id"
    )
    assert ["imdb:tt1"] == matches(settings, '"el hombre"', "'el' <-> 'hombre'")
    assert [] == matches(settings, '"man" + "el"', "'man' <-> 'el'")
    assert ["imdb:tt2"] == matches(settings, "fabuleux", "'fabuleux'")
    assert_index_consistent(settings)


def test_migration_0002_down_and_up_again_restores_the_catalog(imported: Settings) -> None:
    """Downgrading gives one title per document again; upgrading rebuilds the same index."""
    documents = "SELECT id, alt_norm_titles FROM movies ORDER BY id"
    before = rows(imported, documents), vocabulary(imported)

    migrate_schema(imported, "0001", down=True)
    assert [] == matches(imported, '"el hombre"', "'el' <-> 'hombre'")
    migrate_schema(imported, "head")

    assert before == (rows(imported, documents), vocabulary(imported))
    assert_index_consistent(imported)


# -- the write-back (PostgreSQL) -------------------------------------------------------------------


@pytest.mark.postgres
async def test_the_write_back_keeps_alternates_and_the_index_consistent(
    postgres_databases: Databases, imdb_writer: Any, tmp_path: Path
) -> None:
    """A provider's alternate and original titles join the known ones by the same rule;
    title_tsv and title_words follow, for new and known movies alike."""
    settings = settings_on("postgresql", postgres_databases, "writeback", tmp_path)
    import_imdb(settings, imdb_files(imdb_writer))
    records = [
        MovieRecord("imdb:tt0000101", "Spider Man", 2000, 90, 7.0, 9000, ("Drama",),
                    original_title="Spider-Man", alt_titles=("Hombre Arana", "El Hombre")),
        MovieRecord("imdb:tt0000105", "Plain", 2000, 90, 7.0, 5000, ("Drama",),
                    alt_titles=("Sencillo",)),
        MovieRecord("tmdb:1", "Brand New", original_title="Tout Neuf", alt_titles=("Neu",)),
    ]  # fmt: skip
    conn = await asyncpg.connect(settings.postgres_dsn)
    try:
        report = await upsert_movies(reuse_connection(conn), records)
        again = await upsert_movies(reuse_connection(conn), records)
    finally:
        await conn.close()

    assert (1, 2, None) == (len(report.inserted), len(report.updated), again.catalog_version)
    assert JOINED_TITLES.join(["a z", "ab", "el hombre", "hombre arana"]) == alt_norm_titles(
        settings, "tt0000101"
    )
    assert "sencillo" == alt_norm_titles(settings, "tt0000105")
    [(new,)] = rows(settings, "SELECT alt_norm_titles FROM movies WHERE source_key = 'tmdb:1'")
    assert JOINED_TITLES.join(["neu", "tout neuf"]) == new
    assert ["tmdb:1"] == matches(settings, "", "'tout' <-> 'neuf'")
    assert_index_consistent(settings)
