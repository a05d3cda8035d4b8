"""Shared catalogs for the tests: the real bundled sample and a small hand-made one.

Both are real SQLite files written by the real importers; nothing is mocked.
"""

from __future__ import annotations

import gzip
import os
import sqlite3
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from reelsearch.catalog.importers.imdb import (
    AKAS_HEADER,
    BASICS_HEADER,
    RATINGS_HEADER,
    import_imdb,
)
from reelsearch.catalog.importers.sample import import_sample
from reelsearch.catalog.records import MovieRecord
from reelsearch.catalog.writer import open_import
from reelsearch.config import Settings
from reelsearch.http import create_app
from reelsearch.search.backends import open_blocking_engine
from reelsearch.search.engine import BlockingSearchEngine

with warnings.catch_warnings():
    # starlette 1.x prefers httpx2 and warns once, at import, when it finds httpx;
    # the project pins httpx, so the warning is expected and says nothing about our code.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

N = "\\N"

# The small catalog, one title a line:
# tconst (without "tt") | titleType | primaryTitle | originalTitle ("=" same) | startYear |
# runtimeMinutes | genres | averageRating ("-" no rating row) | numVotes.
_SMALL_TABLE = r"""
0000001 | movie | The Matrix | = | 1999 | 136 | Action,Sci-Fi | 8.7 | 2000000
0000002 | movie | The Matrix Reloaded | = | 2003 | 138 | Action,Sci-Fi | 7.2 | 600000
0000003 | movie | Beyond the Mat | = | 1999 | 108 | Documentary,Sport | 7.3 | 2243
0000004|movie|Amélie|Le fabuleux destin d'Amélie Poulain|2001|122|Comedy,Romance|8.3|780000
0000005 | movie | Spider-Man | = | 2002 | 121 | Action,Adventure,Sci-Fi | 7.4 | 850000
0000006 | tvSeries | Spider-Man | = | 1977 | 60 | Action,Adventure,Sci-Fi | 5.5 | 3000
0000007 | movie | 2001: A Space Odyssey | = | 1968 | 149 | Adventure,Sci-Fi | 8.3 | 700000
0000008 | movie | 2000 Maniacs | Two Thousand Maniacs! | 1964 | 87 | Horror | 5.5 | 5000
0000009 | movie | Schindler's List | = | 1993 | 195 | Biography,Drama,History | 9.0 | 1400000
0000010 | movie | Alien | = | 1979 | 117 | Horror,Sci-Fi | 8.5 | 900000
0000011 | movie | Aliens | = | 1986 | 137 | Action,Adventure,Sci-Fi | 8.4 | 750000
0000012 | movie | Psycho | = | 1960 | 109 | Horror,Mystery,Thriller | 8.5 | 700100
0000013 | movie | Psycho | = | 1998 | 105 | Horror,Mystery,Thriller | 4.6 | 45000
0000014 | movie | Heat | = | 1995 | 170 | Action,Crime,Drama | 8.3 | 690000
0000015 | movie | Interstellar | = | 2014 | 169 | Adventure,Drama,Sci-Fi | 8.7 | 2100000
0000016 | movie | Les Misérables | = | 2012 | 158 | Drama,Musical,Romance | 7.5 | 350000
0000017 | movie | Léon: The Professional | Léon | 1994 | 110 | Action,Crime,Drama | 8.5 | 1200000
0000018 | movie | Mission: Impossible | = | 1996 | 110 | Action,Adventure,Thriller | 7.2 | 450000
0000019 | short | Say "Cheese" | = | 2010 | 5 | Comedy,Short | 6.1 | 120
0000020 | movie | Untitled Project | \N | \N | \N | \N | - | 0
0000021 | movie | Se7en | = | 1995 | 127 | Crime,Drama,Mystery | 8.6 | 1700000
0000022 | movie | Star Wars | = | 1977 | 121 | Action,Adventure,Fantasy | 8.6 | 1300000
0000023 | movie | Star Trek | = | 2009 | 127 | Action,Adventure,Sci-Fi | 7.7 | 600500
0000024 | movie | Toy Story | = | 1995 | 81 | Animation,Adventure,Comedy | 8.3 | 1000000
0000025 | movie | Toy Story 2 | = | 1999 | 92 | Animation,Adventure,Comedy | 7.9 | 600100
0000026 | movie | Toy Story 3 | = | 2010 | 103 | Animation,Adventure,Comedy | 8.3 | 850100
0000027 | tvMovie | Alien Nation: Dark Horizon | = | 1994 | 91 | Sci-Fi | 6.0 | 1500
0000028 | video | The Matrix Revisited | = | 2001 | 123 | Documentary | 7.4 | 5100
0000029 | movie | Casablanca | = | 1942 | 102 | Drama,Romance,War | 8.5 | 580000
0000030 | movie | Star | = | 2001 | 95 | Drama | 5.0 | 300
"""

Title = tuple[str, str, str, str, str, str, str, float | None, int]


def _parse_table(table: str) -> list[Title]:
    rows: list[Title] = []
    for line in table.strip().splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        tconst, kind, title, original, year, runtime, genres, rating, votes = cells
        rows.append(
            (
                f"tt{tconst}",
                kind,
                title,
                title if original == "=" else original,
                year,
                runtime,
                genres,
                None if rating == "-" else float(rating),
                int(votes),
            )
        )
    return rows


SMALL_TITLES: list[Title] = _parse_table(_SMALL_TABLE)

# titleId, title (alternate titles; the importer attaches them to the movie).
SMALL_AKAS = [
    ("tt0000004", "Le fabuleux destin d'Amélie Poulain"),
    ("tt0000021", "Seven"),
    ("tt0000017", "Léon"),
]

ImdbWriter = Callable[..., dict[str, Path]]


def write_gz_lines(path: Path, lines: Sequence[str]) -> Path:
    """Write ``lines`` (each without its newline) as gzipped UTF-8 text."""
    with gzip.open(path, "wt", encoding="utf-8", newline="\n") as handle:
        for line in lines:
            handle.write(line + "\n")
    return path


def basics_line(
    tconst: str,
    kind: str,
    title: str,
    original: str,
    year: str,
    runtime: str,
    genres: str,
) -> str:
    return "\t".join([tconst, kind, title, original, "0", year, N, runtime, genres])


def write_imdb(
    directory: Path,
    titles: Sequence[Title],
    akas: Sequence[tuple[str, str]] = (),
    *,
    extra_basics: Sequence[str] = (),
    extra_ratings: Sequence[str] = (),
    extra_akas: Sequence[str] = (),
) -> dict[str, Path]:
    """Write title.basics/ratings/akas .tsv.gz for ``titles`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    basics = ["\t".join(BASICS_HEADER)]
    basics += [basics_line(*row[:7]) for row in titles]
    basics += list(extra_basics)
    ratings = ["\t".join(RATINGS_HEADER)]
    ratings += [f"{row[0]}\t{row[7]}\t{row[8]}" for row in titles if row[7] is not None]
    ratings += list(extra_ratings)
    aka_lines = ["\t".join(AKAS_HEADER)]
    aka_lines += [
        "\t".join([tconst, str(n), title, "FR", N, N, N, "0"])
        for n, (tconst, title) in enumerate(akas, start=1)
    ]
    aka_lines += list(extra_akas)
    return {
        "basics": write_gz_lines(directory / "title.basics.tsv.gz", basics),
        "ratings": write_gz_lines(directory / "title.ratings.tsv.gz", ratings),
        "akas": write_gz_lines(directory / "title.akas.tsv.gz", aka_lines),
    }


# The PostgreSQL server the tests create their databases on (trust auth locally).
POSTGRES_URL = os.environ.get(
    "REELSEARCH_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


def _postgres_problem() -> str | None:
    """Why the test PostgreSQL server can't be used, or None if it can."""
    import psycopg

    dsn = "postgresql://" + POSTGRES_URL.split("://", 1)[1]
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc}".strip()
    return None


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[Callable[[str], str]]:
    """``create(name)`` -> the URL of a new, empty database, dropped after the session.

    CI must test PostgreSQL for real: there a missing server fails the run;
    elsewhere its tests are skipped with the reason.
    """
    import psycopg

    problem = _postgres_problem()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    base, _, _ = POSTGRES_URL.rpartition("/")
    admin_dsn = "postgresql://" + POSTGRES_URL.split("://", 1)[1]
    created: list[str] = []

    def create(name: str) -> str:
        database = f"rs_test_{os.getpid()}_{name}"
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{database}"')
        created.append(database)
        return f"{base}/{database}"

    yield create
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        for database in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


class PausedImport:
    """An import of 200 test films, run in a thread, that stops after 100 until finished.

    ``start()`` returns once the import is halfway (uncommitted); ``finish()``
    lets it commit and re-raises what it raised. Leaving the ``with`` block
    always lets the thread end.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.midway, self.resume = threading.Event(), threading.Event()
        self.failures: list[BaseException] = []
        self.thread = threading.Thread(target=self._run)

    def _records(self) -> Iterator[MovieRecord]:
        for n in range(200):
            if n == 100:
                self.midway.set()
                self.resume.wait(30)
            yield MovieRecord(source_key=f"test:{n}", title=f"Film {n}", year=2000)

    def _run(self) -> None:
        try:
            with open_import(self.settings, "test") as job:
                job.add_movies(self._records())
        except BaseException as exc:  # re-raised by finish()
            self.failures.append(exc)

    def start(self) -> None:
        self.thread.start()
        assert self.midway.wait(30), "the import never got halfway"

    def finish(self) -> None:
        self.resume.set()
        self.thread.join(60)
        if self.failures:
            raise self.failures[0]

    def __enter__(self) -> PausedImport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.resume.set()
        if self.thread.ident is not None:
            self.thread.join(60)


@pytest.fixture
def paused_import() -> type[PausedImport]:
    """``with paused_import(settings) as job: job.start(); ...; job.finish()``."""
    return PausedImport


# The search deadline in tests: the suites share a loaded 2-core machine, where a
# broad PostgreSQL search ("the the") can take half a second; the deadline's
# own tests set theirs.
TEST_DEADLINE_MS = 10_000


def settings_for(path: Path, **overrides: object) -> Settings:
    overrides.setdefault("search_deadline_ms", TEST_DEADLINE_MS)
    return Settings(database_url=f"sqlite:///{path}", **overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real ggplot2movies sample imported once per session (read-only for tests)."""
    path = tmp_path_factory.mktemp("sample") / "sample.db"
    import_sample(settings_for(path))
    return path


@pytest.fixture(scope="session")
def sample_settings(sample_db: Path) -> Settings:
    """Settings of the session's imported sample catalog."""
    return settings_for(sample_db)


@pytest.fixture(scope="session")
def small_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hand-made catalog of SMALL_TITLES imported from IMDb TSV files (read-only)."""
    directory = tmp_path_factory.mktemp("small")
    files = write_imdb(directory / "dump", SMALL_TITLES, SMALL_AKAS)
    path = directory / "small.db"
    import_imdb(settings_for(path), list(files.values()))
    return path


@pytest.fixture(scope="session")
def small_settings(small_db: Path) -> Settings:
    """Settings of the session's small hand-made catalog."""
    return settings_for(small_db)


@pytest.fixture
def small_titles() -> list[Title]:
    """A fresh copy of the rows of the small catalog, to vary in a test."""
    return list(SMALL_TITLES)


@pytest.fixture
def imdb_writer(tmp_path: Path) -> ImdbWriter:
    """Write IMDb dumps into a fresh folder under tmp_path: ``imdb_writer(titles, akas)``."""
    counter = iter(range(1_000))

    def write(
        titles: Sequence[Title] = SMALL_TITLES,
        akas: Sequence[tuple[str, str]] = SMALL_AKAS,
        **kwargs: Sequence[str],
    ) -> dict[str, Path]:
        return write_imdb(tmp_path / f"dump{next(counter)}", titles, akas, **kwargs)

    return write


@pytest.fixture
def small_copy(small_db: Path, tmp_path: Path) -> Settings:
    """A private, writable copy of the small catalog (for tests that import over it)."""
    path = tmp_path / "copy.db"
    copy_database(small_db, path)
    return settings_for(path)


def copy_database(source: Path, target: Path) -> None:
    """Copy a SQLite catalog consistently (WAL included) with the backup API."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def copy_catalog(source: Path, target: Path) -> None:
    """``copy_database``, and the files the import wrote beside ``source`` (word index,
    title postings, hit rows) beside ``target``. Their names, which ``catalog_meta``
    holds, begin with the catalog's: ``target`` must have ``source``'s name."""
    assert source.name == target.name, "catalog_meta names the files by the catalog's name"
    copy_database(source, target)
    for kind in ("words", "postings", "rows"):
        for side in source.parent.glob(f"{source.name}.{kind}-*"):
            (target.parent / side.name).write_bytes(side.read_bytes())


@pytest.fixture(scope="session")
def small_pg_settings(
    postgres_databases: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """The small hand-made catalog imported from IMDb TSV files into PostgreSQL (read-only)."""
    settings = Settings(
        database_url=postgres_databases("small"), search_deadline_ms=TEST_DEADLINE_MS
    )
    files = write_imdb(tmp_path_factory.mktemp("small_pg") / "dump", SMALL_TITLES, SMALL_AKAS)
    import_imdb(settings, list(files.values()))
    return settings


@pytest.fixture(scope="session")
def sample_pg_settings(postgres_databases: Callable[[str], str]) -> Settings:
    """The real ggplot2movies sample imported into PostgreSQL once per session (read-only)."""
    settings = Settings(
        database_url=postgres_databases("sample"), search_deadline_ms=TEST_DEADLINE_MS
    )
    import_sample(settings)
    return settings


# -- each backend --------------------------------------------------------------
# Tests that use the engines or apps below run once per backend: the same
# cases on SQLite and PostgreSQL, so neither can drift.

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend of the catalogs below."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def small_backend_settings(request: pytest.FixtureRequest, backend: str) -> Settings:
    """Settings of the small catalog on each backend."""
    name = "small_settings" if backend == "sqlite" else "small_pg_settings"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def sample_backend_settings(request: pytest.FixtureRequest, backend: str) -> Settings:
    """Settings of the sample catalog on each backend."""
    name = "sample_settings" if backend == "sqlite" else "sample_pg_settings"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def small_engine(small_backend_settings: Settings) -> Iterator[BlockingSearchEngine]:
    """A search engine on the small catalog."""
    engine = open_blocking_engine(small_backend_settings)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def sample_engine(sample_backend_settings: Settings) -> Iterator[BlockingSearchEngine]:
    """A search engine on the sample catalog."""
    engine = open_blocking_engine(sample_backend_settings)
    yield engine
    engine.close()


@pytest.fixture
def any_engine(request: pytest.FixtureRequest, backend: str) -> BlockingSearchEngine:
    """Parametrize indirectly with "small_engine" or "sample_engine"."""
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def client(small_backend_settings: Settings) -> Iterator[TestClient]:
    """The HTTP app on the small catalog, its lifespan running (engine opened)."""
    app = create_app(small_backend_settings)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def sample_client(sample_backend_settings: Settings) -> Iterator[TestClient]:
    """The HTTP app on the sample catalog, its lifespan running."""
    app = create_app(sample_backend_settings)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
