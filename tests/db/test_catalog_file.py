"""The SQLite catalog file replaced or deleted under a running server (``reelsearch serve``).

The server runs as users run it: a subprocess with two granian worker
processes, polling for catalog changes every 100 ms. Each worker must notice
on its own, so every check asks /ready several times.
"""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from child_processes import environ_without_settings, free_port
from conftest import SMALL_TITLES
from reelsearch.catalog.importers.imdb import import_imdb
from reelsearch.catalog.importers.movielens import import_movielens
from reelsearch.config import Settings
from reelsearch.db import ReadPool
from reelsearch.db.catalog_file import identity_of, log_of
from reelsearch.errors import CatalogFileMissing

# Time for each worker to notice a change (poll every 0.1 s) and load the catalog.
SETTLE_SECONDS = 15.0
ASKS = 8  # /ready answers per check: with 2 workers, both are asked


def movielens(path: Path, count: int, word: str) -> Path:
    """A MovieLens movies.csv of ``count`` movies titled "<word> <n>"."""
    rows = "".join(f"{n},{word} {n} (2001),Drama\n" for n in range(1, count + 1))
    path.write_text("movieId,title,genres\n" + rows, encoding="utf-8")
    return path


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Callable[[Path], httpx.Client]]:
    """``server(db)``: ``reelsearch serve --workers 2`` on ``db``; a client on it."""
    started: list[tuple[subprocess.Popen[bytes], httpx.Client]] = []
    log = (tmp_path / "server.log").open("wb")

    def start(db: Path) -> httpx.Client:
        port = free_port()
        environ = environ_without_settings()
        environ.update(
            REELSEARCH_DATABASE_URL=f"sqlite:///{db}",
            REELSEARCH_CATALOG_POLL_SECONDS="0.1",
            # /ready names the movie count only to the addresses listed here.
            REELSEARCH_READY_DETAILS_FROM="127.0.0.1",
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "reelsearch", "serve", "--port", str(port), "--workers", "2"],
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,  # its workers too are stopped with it
        )
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
        started.append((process, client))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if client.get("/ready").status_code == 200:
                    return client
            except httpx.TransportError:
                pass
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            time.sleep(0.1)
        raise AssertionError("the server never became ready")

    yield start
    for process, client in started:
        client.close()
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)
    log.close()


def answers(client: httpx.Client) -> list[tuple[int, Any]]:
    """``ASKS`` answers of /ready: (status, movies or the error message)."""
    found = []
    for _ in range(ASKS):
        response = client.get("/ready")
        body = response.json()
        found.append(
            (response.status_code, body.get("movies", body.get("error", {}).get("message")))
        )
    return found


def settle(client: httpx.Client, expected: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
    """/ready's answers once they equal ``expected``, or the last ones after SETTLE_SECONDS."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        found = answers(client)
        if found == expected or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def titles(client: httpx.Client, q: str) -> list[str]:
    hits = client.get("/v1/search", params={"q": q, "limit": 2}).json()["hits"]
    return [hit["title"] for hit in hits]


def test_a_replaced_file_is_served_and_a_deleted_one_is_not_ready(
    tmp_path: Path, server: Callable[[Path], httpx.Client], imdb_writer: Any
) -> None:
    """``mv new.db cat.db`` under a server: every worker serves the new file's movies, not
    the old file's log replayed onto it. ``rm cat.db``: /ready 503 saying so. A file put
    back is served again."""
    db = tmp_path / "cat.db"
    settings = Settings(database_url=f"sqlite:///{db}", import_max_shrink=1.0)
    import_imdb(settings, list(imdb_writer().values()))
    client = server(db)
    # An import in place while the server reads: the log beside cat.db now holds its pages.
    import_imdb(settings, list(imdb_writer(SMALL_TITLES[:20]).values()))
    assert [(200, 20)] * ASKS == settle(client, [(200, 20)] * ASKS)
    assert log_of(db).exists()

    new = tmp_path / "new.db"
    import_movielens(
        Settings(database_url=f"sqlite:///{new}"), movielens(tmp_path / "m.csv", 7, "Zephyr")
    )
    os.rename(new, db)

    assert [(200, 7)] * ASKS == settle(client, [(200, 7)] * ASKS)
    assert ["Zephyr 1", "Zephyr 2"] == titles(client, "zephyr")
    assert [] == titles(client, "matrix")

    db.unlink()
    reason = (
        f"not ready: catalog: CatalogFileMissing: the catalog file {db} was deleted; put a "
        "catalog there (reelsearch import) and it is opened within a poll interval; "
        f"migrations: FileNotFoundError: no catalog file at {db}"
    )
    assert [(503, reason)] * ASKS == settle(client, [(503, reason)] * ASKS)
    assert 503 == client.get("/v1/search", params={"q": "zephyr"}).status_code

    again = tmp_path / "again.db"
    import_movielens(
        Settings(database_url=f"sqlite:///{again}"), movielens(tmp_path / "a.csv", 3, "Quill")
    )
    os.rename(again, db)
    assert [(200, 3)] * ASKS == settle(client, [(200, 3)] * ASKS)
    assert ["Quill 1", "Quill 2"] == titles(client, "quill")


def test_the_pool_drops_only_the_old_files_log(tmp_path: Path, imdb_writer: Any) -> None:
    """Re-opening removes the log the old file left beside the path, and keeps a log that
    the new file already has (another worker process re-opened it first). Before that, no
    connection is opened on the new file."""
    db = tmp_path / "cat.db"
    settings = Settings(database_url=f"sqlite:///{db}")
    import_imdb(settings, list(imdb_writer().values()))
    first, second = ReadPool(settings), ReadPool(settings)
    try:
        old_log = identity_of(log_of(db))
        assert old_log is not None
        import_movielens(Settings(database_url=f"sqlite:///{tmp_path / 'n.db'}"),
                         movielens(tmp_path / "m.csv", 7, "Zephyr"))  # fmt: skip
        os.rename(tmp_path / "n.db", db)
        # Until it re-opens, the pool reads the old file and opens no connection to the new one.
        with first.connection() as conn:
            assert (30,) == conn.execute("SELECT count(*) FROM movies").fetchone()
        with pytest.raises(CatalogFileMissing, match="changed; re-opening it"):
            first._connect()

        assert (True, False) == (first.follow_file(), first.follow_file())
        new_log = identity_of(log_of(db))
        assert new_log is not None and new_log != old_log
        assert True is second.follow_file()
        assert new_log == identity_of(log_of(db))
        for pool in (first, second):
            with pool.connection() as conn:
                assert (7,) == conn.execute("SELECT count(*) FROM movies").fetchone()

        db.unlink()
        assert False is first.follow_file()
        with pytest.raises(CatalogFileMissing, match="was deleted"), first.connection():
            pass
    finally:
        first.dispose()
        second.dispose()


def test_a_file_without_a_catalog_stays_refused_through_every_poll(small_db: Path) -> None:
    """While the engine holds the file to have no catalog (a first import killed there),
    a poll that finds the same file keeps refusing reads: no moment between polls lets a
    search through to the old snapshot (a flaky 200 the CI saw). Only the engine's own
    check of the file is lent a connection; clearing the held problem lets every read in."""
    pool = ReadPool(Settings(database_url=f"sqlite:///{small_db}"))
    try:
        assert False is pool.follow_file()
        pool.held_problem = pool.problem = "no import has completed here"
        for _ in range(3):
            assert False is pool.follow_file()
            assert "no import has completed here" == pool.problem
            with pytest.raises(CatalogFileMissing):
                pool.lend()
        conn, stack = pool.lend(despite_held=True)
        pool.end(conn, stack)
        pool.held_problem = pool.problem = None
        conn, stack = pool.lend()
        pool.end(conn, stack)
    finally:
        pool.dispose()
