"""Guarded imports on both backends: refused imports leave the old catalog intact and served,
and an import is planned for the rows it writes, not for the catalog it replaces."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from conftest import SMALL_TITLES
from reelsearch.catalog import CatalogImport, MovieRecord
from reelsearch.catalog.guards import ImportRefused, check_catalog_size, check_kinds_found
from reelsearch.catalog.importers.imdb import import_imdb
from reelsearch.catalog.importers.movielens import import_movielens
from reelsearch.catalog.importers.sample import load_sample_frame, read_sample
from reelsearch.catalog.postgres_writer import PostgresCatalogImport
from reelsearch.catalog.records import ImportReport
from reelsearch.catalog.writer import RANK_SQL, open_import
from reelsearch.config import Settings
from reelsearch.http import create_app

Databases = Callable[[str], str]
SMALL_COUNT = len(SMALL_TITLES)  # 30 titles, all kept by an import without --kinds


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def writable(
    request: pytest.FixtureRequest, tmp_path: Path, imdb_writer: Any
) -> Callable[..., Settings]:
    """``writable(name, **settings)`` -> a private copy of the small catalog on each backend."""

    def make(name: str, **overrides: Any) -> Settings:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / name}.db"
        else:
            databases: Databases = request.getfixturevalue("postgres_databases")
            url = databases(f"guard_{name}")
        settings = Settings(database_url=url, catalog_poll_seconds=0.05, **overrides)
        import_imdb(settings, list(imdb_writer().values()))
        return settings

    return make


# /ready names the catalog version and size only for the admin token.
ADMIN_TOKEN = "guards-test-admin-token-0123456789abcdef"


class Served:
    """The HTTP app on a catalog, polling for new versions every 50 ms, as a server does."""

    def __init__(self, settings: Settings) -> None:
        app = create_app(dataclasses.replace(settings, admin_token=ADMIN_TOKEN))
        self.client = TestClient(app, raise_server_exceptions=False)

    def ready(self) -> dict[str, Any]:
        response = self.client.get("/ready", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert 200 == response.status_code, response.text
        body: dict[str, Any] = response.json()
        body.pop("dependencies")  # each dependency's state: the catalog's facts are enough here
        return body

    def titles(self, q: str) -> list[str]:
        hits = self.client.get("/v1/search", params={"q": q, "limit": 3}).json()["hits"]
        return [hit["title"] for hit in hits]


@pytest.fixture
def served() -> Iterator[Callable[[Settings], Served]]:
    """``served(settings)``: the app running on that catalog (closed after the test)."""
    apps: list[Served] = []

    def start(settings: Settings) -> Served:
        app = Served(settings)
        app.client.__enter__()
        apps.append(app)
        return app

    yield start
    for app in apps:
        app.client.__exit__(None, None, None)


def assert_still_served(app: Served, before: dict[str, Any]) -> None:
    """Several poll intervals later the app serves the same catalog version and movies."""
    time.sleep(0.3)
    assert before == app.ready()
    assert ["The Matrix", "The Matrix Reloaded", "The Matrix Revisited"] == app.titles("matrix")


def write_movielens(path: Path, rows: list[str]) -> Path:
    path.write_text("movieId,title,genres\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def test_an_import_with_no_good_rows_is_refused(
    writable: Callable[..., Settings], served: Callable[[Settings], Served], tmp_path: Path
) -> None:
    """A MovieLens file holding only its header fails; the old catalog stays and is served."""
    settings = writable("empty")
    app = served(settings)
    before = app.ready()
    assert SMALL_COUNT == before["movies"]

    with pytest.raises(ImportRefused, match="no movies to import from movielens") as info:
        import_movielens(settings, write_movielens(tmp_path / "movies.csv", []))

    assert info.value.report is not None
    assert 0 == info.value.report.movies_written
    assert_still_served(app, before)


def test_an_import_of_bad_rows_only_is_refused(
    writable: Callable[..., Settings], tmp_path: Path
) -> None:
    """Rows that are all bad count as zero good rows: refused even with any shrink allowed."""
    settings = writable("bad_only", import_max_shrink=1.0)
    path = write_movielens(tmp_path / "movies.csv", ["x,Heat (1995),Action", "y,Alien,Horror"])

    with pytest.raises(ImportRefused, match="2 rows read, 2 bad, none kept"):
        import_movielens(settings, path)


def test_a_shrinking_import_stops_before_the_swap(
    writable: Callable[..., Settings], served: Callable[[Settings], Served], tmp_path: Path
) -> None:
    """3 movies replacing 30 (-90%) is refused by default, naming the setting and the flag."""
    settings = writable("shrink")
    app = served(settings)
    before = app.ready()
    three = ["1,Heat (1995),Action", "2,Alien (1979),Horror", "3,Casablanca (1942),Drama"]

    with pytest.raises(ImportRefused) as info:
        import_movielens(settings, write_movielens(tmp_path / "movies.csv", three))

    assert (
        "the import would shrink the catalog from 30 to 3 movies (-90%; at most -50% allowed "
        "by REELSEARCH_IMPORT_MAX_SHRINK). If that is what you want, run the import again "
        "with --allow-shrink."
    ) == str(info.value)
    assert_still_served(app, before)


def test_a_shrink_within_the_configured_share_goes_through(
    writable: Callable[..., Settings], served: Callable[[Settings], Served], imdb_writer: Any
) -> None:
    """With REELSEARCH_IMPORT_MAX_SHRINK=0.2, 26 of 30 movies (-13%) replace the catalog."""
    settings = writable("within", import_max_shrink=0.2)
    app = served(settings)
    first = app.ready()["catalog_version"]

    report = import_imdb(settings, list(imdb_writer(SMALL_TITLES[:26]).values()))

    assert 26 == report.movies_written
    deadline = time.monotonic() + 5
    while app.ready()["catalog_version"] == first and time.monotonic() < deadline:
        time.sleep(0.05)
    assert {"status": "ready", "catalog_version": first + 1, "movies": 26} == app.ready()


def test_allowing_any_shrink_still_refuses_an_empty_catalog(
    writable: Callable[..., Settings], tmp_path: Path
) -> None:
    """import_max_shrink=1.0 (--allow-shrink) lets 3 movies replace 30, but never 0."""
    settings = writable("allow", import_max_shrink=1.0)
    three = ["1,Heat (1995),Action", "2,Alien (1979),Horror", "3,Casablanca (1942),Drama"]

    assert (
        3 == import_movielens(settings, write_movielens(tmp_path / "m.csv", three)).movies_written
    )
    with pytest.raises(ImportRefused, match="no movies to import"):
        import_movielens(settings, write_movielens(tmp_path / "empty.csv", []))


def test_a_misspelled_kind_lists_the_kinds_of_the_file(
    writable: Callable[..., Settings], served: Callable[[Settings], Served], imdb_writer: Any
) -> None:
    """``--kinds movei`` fails after reading the file, naming what it holds and the nearest."""
    settings = writable("kinds", import_max_shrink=1.0)
    app = served(settings)
    before = app.ready()

    with pytest.raises(ImportRefused) as info:
        import_imdb(settings, list(imdb_writer().values()), kinds=frozenset({"movei", "short"}))

    assert (
        "--kinds 'movei': no title in title.basics.tsv.gz has that kind. The file holds: "
        "movie (26), short (1), tvMovie (1), tvSeries (1), video (1). "
        "Did you mean: 'movei' -> 'movie'?"
    ) == str(info.value)
    assert_still_served(app, before)


@pytest.mark.parametrize(
    ("before", "after", "max_shrink", "refused"),
    [
        (100, 50, 0.5, False),  # exactly the share allowed
        (100, 49, 0.5, True),
        (100, 1, 0.99, False),
        (100, 0, 1.0, True),  # empty: always refused
        (0, 1, 0.0, False),  # the first import of a catalog
        (10, 20, 0.0, False),  # growing is never a shrink
        (10, 9, 0.0, True),
    ],
)
def test_catalog_size_rule(before: int, after: int, max_shrink: float, refused: bool) -> None:
    """The shrink share is compared with the allowed share; an empty catalog is always refused."""
    report = ImportReport(source="test")
    if refused:
        with pytest.raises(ImportRefused):
            check_catalog_size(report, before=before, after=after, max_shrink=max_shrink)
    else:
        check_catalog_size(report, before=before, after=after, max_shrink=max_shrink)


def test_kinds_rule_without_a_filter_or_with_known_kinds_passes() -> None:
    """No --kinds, or kinds that the file holds, are not refused; a file of no titles is named."""
    check_kinds_found(None, {}, file="f")
    check_kinds_found({"movie"}, {"movie": 2, "short": 1}, file="f")
    with pytest.raises(ImportRefused, match="The file holds: no titles."):
        check_kinds_found({"movie"}, {}, file="f")


# -- plans that follow the new rows, not the previous catalog's statistics --------------------


class _PlanRecorded(Exception):
    """Stops the import once the plan is read: a bad plan would take minutes to run."""


class _RankPlanOfSqlite(CatalogImport):
    """The SQLite import, reading the plan of the ranking step right before it would run."""

    rank_plan: list[tuple[int, str]] = []

    def _phase(self, name: str) -> None:
        super()._phase(name)
        if name == "delete stale":  # the last step before ranking
            rows = self.conn.execute("EXPLAIN QUERY PLAN " + RANK_SQL).fetchall()
            self.rank_plan = [(parent, detail) for _id, parent, _, detail in rows]
            raise _PlanRecorded


def _tiny(job: CatalogImport | PostgresCatalogImport) -> None:
    job.add_movies(MovieRecord(source_key=f"tiny:{n}", title=f"Tiny {n}") for n in range(3))


def test_sqlite_ranks_the_sample_by_key_after_a_three_row_catalog(tmp_path: Path) -> None:
    """After a 3-row catalog, ranking the sample looks each movie up by id (never a scan per row).

    Planned on the 3-row catalog's statistics, SQLite scanned movies for every
    ranked row: 313 s instead of about 2 s (issue 11).
    """
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}")
    with open_import(settings, "tiny") as tiny:
        _tiny(tiny)

    job = _RankPlanOfSqlite(settings, "ggplot2movies")
    with pytest.raises(_PlanRecorded), job:
        job.add_movies(read_sample(load_sample_frame(), job.report))

    outer = [detail for parent, detail in job.rank_plan if parent == 0]
    assert [
        "MATERIALIZE ranked",
        "SCAN ranked",
        "SEARCH movies USING INTEGER PRIMARY KEY (rowid=?)",
    ] == outer
    assert 58_788 == job.report.movies_written


class _PlansOfPostgres(PostgresCatalogImport):
    """The PostgreSQL import with auto_explain on its session: the plan of every statement run."""

    plans: list[str]

    def _begin(self) -> None:
        self.plans = []
        self.conn.add_notice_handler(lambda notice: self.plans.append(notice.message_primary or ""))
        self.conn.execute("LOAD 'auto_explain'")  # a contrib module; the tests run as superuser
        self.conn.execute("SET auto_explain.log_min_duration = 0")
        self.conn.execute("SET auto_explain.log_level = 'notice'")
        super()._begin()

    def plan_of(self, statement_start: str) -> str:
        found = [p for p in self.plans if f"Query Text: {statement_start}" in p]
        assert 1 == len(found), statement_start
        return found[0]


@pytest.mark.postgres
def test_postgres_plans_the_sample_on_its_own_rows_after_a_three_row_catalog(
    postgres_databases: Databases,
) -> None:
    """After a 3-row catalog, the ranking step is planned on the sample's row counts.

    The streamed rows are analyzed before the step reads them, so the planner
    expects the 58,788 rows it will meet, and joins them by hash (no loop
    over one table per row of another).
    """
    settings = Settings(database_url=postgres_databases("guard_plan"))
    with open_import(settings, "tiny") as tiny:
        _tiny(tiny)

    with _PlansOfPostgres(settings, "ggplot2movies") as job:
        job.add_movies(read_sample(load_sample_frame(), job.report))

    rank = job.plan_of("\nCREATE TEMP TABLE import_ranked")
    assert "Nested Loop" not in rank, rank
    assert "rows=58788" in rank, rank
    assert 58_788 == job.report.movies_written
