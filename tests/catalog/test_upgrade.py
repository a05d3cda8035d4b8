"""``reelsearch upgrade`` brings a catalog imported by an older release to this release's
schema in place, and ``reelsearch serve`` warns about one that needs it."""

# Asserts read `expected == actual` (STYLE.md).
# ruff: noqa: SIM300

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from child_processes import environ_without_settings
from reelsearch.catalog.importers.imdb import import_imdb
from reelsearch.catalog.schema import migrate_schema
from reelsearch.catalog.upgrade import REVISION_SQL, check_servable
from reelsearch.config import Settings
from reelsearch.db import make_sync_engine
from reelsearch.observability.readiness import SCHEMA_HEAD
from reelsearch.search.backends import open_blocking_engine
from reelsearch.search.query import parse_search

OLDER = "0006"


def reelsearch(settings: Settings, *arguments: str) -> tuple[int, str, str]:
    """``reelsearch --database-url URL ...`` run as a user runs it: status, stdout, stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "reelsearch", "--database-url", settings.database_url, *arguments],
        capture_output=True, text=True, env=environ_without_settings(), timeout=120, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def revision(settings: Settings) -> str:
    engine = make_sync_engine(settings)
    try:
        with engine.connect() as connection:
            return str(connection.exec_driver_sql(REVISION_SQL).scalar())
    finally:
        engine.dispose()


def first_hit(settings: Settings, text: str) -> str:
    engine = open_blocking_engine(settings)
    try:
        return str(engine.search(parse_search([("q", text)])).hits[0]["title"])
    finally:
        engine.close()


def test_an_older_sqlite_catalog_is_upgraded_in_place(small_copy: Settings) -> None:
    """An older schema: serve's check warns and names the command; `reelsearch upgrade`
    brings it to this release's revision, leaving the movies and answers as they were;
    a second run has nothing to do."""
    before = first_hit(small_copy, "matrix")
    migrate_schema(small_copy, OLDER, down=True)  # as an older release left it
    assert OLDER == revision(small_copy)
    assert (
        f"the catalog's schema is at revision {OLDER} and this release's is {SCHEMA_HEAD}: "
        "searches work, but /ready reports it not ready until `reelsearch upgrade` "
        "(or an import) brings it up to date"
    ) == check_servable(small_copy)

    assert (
        0,
        f"reelsearch: upgraded the catalog's schema from revision {OLDER} to {SCHEMA_HEAD}; "
        "its movies and version are unchanged, and what the new revisions add comes with "
        "the next import\n",
        "",
    ) == reelsearch(small_copy, "upgrade")
    assert SCHEMA_HEAD == revision(small_copy)
    assert check_servable(small_copy) is None
    assert before == first_hit(small_copy, "matrix")
    assert (
        0,
        f"reelsearch: the catalog's schema is already at revision {SCHEMA_HEAD}: nothing to do\n",
        "",
    ) == reelsearch(small_copy, "upgrade")


def test_upgrading_a_missing_sqlite_catalog_creates_nothing(tmp_path: Path) -> None:
    """No catalog file: a clear error and exit status 1, and no file is made."""
    missing = tmp_path / "none.db"
    settings = Settings(database_url=f"sqlite:///{missing}")
    assert (
        1,
        "",
        f"reelsearch: no catalog at {missing}: `reelsearch import sample` makes one\n",
    ) == reelsearch(settings, "upgrade")
    assert not missing.exists()


@pytest.mark.postgres
def test_an_older_postgres_catalog_gets_the_new_table(
    postgres_databases: Callable[[str], str],
    tmp_path: Path,
    imdb_writer: Callable[..., dict[str, Path]],
) -> None:
    """A PostgreSQL catalog from before 0007 has no title postings nor hit rows table and
    still answers; the upgrade adds the tables and moves the revision, searches answer
    the same, and the catalog keeps its version."""
    settings = Settings(
        database_url=postgres_databases("upgrade"), word_index_cache_dir=str(tmp_path / "c")
    )
    import_imdb(settings, list(imdb_writer().values()))
    with psycopg.connect(settings.postgres_dsn) as conn:
        (version,) = conn.execute("SELECT value FROM catalog_meta WHERE key = 'version'").fetchone()
    before = first_hit(settings, "casablanca")
    migrate_schema(settings, OLDER, down=True)
    assert before == first_hit(settings, "casablanca")  # the older schema still searches

    status, out, err = reelsearch(settings, "upgrade")

    assert (0, "") == (status, err)
    assert out.startswith(f"reelsearch: upgraded the catalog's schema from revision {OLDER} to")
    assert SCHEMA_HEAD == revision(settings)
    with psycopg.connect(settings.postgres_dsn) as conn:
        assert (version,) == conn.execute(
            "SELECT value FROM catalog_meta WHERE key = 'version'"
        ).fetchone()
        assert (0,) == conn.execute("SELECT count(*) FROM title_postings").fetchone()
        assert (0,) == conn.execute("SELECT count(*) FROM hit_rows").fetchone()
    assert before == first_hit(settings, "casablanca")
