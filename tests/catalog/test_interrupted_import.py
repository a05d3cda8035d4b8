"""Imports killed part-way, as a user kills them: a real ``reelsearch import`` process
stopped at a phase it printed, with SIGKILL, SIGTERM, or its output pipe closed.

What must hold: a re-import that never committed leaves the old catalog answering
exactly as before, and no file of its own; a first import that never committed leaves
a database that says it holds no catalog, never one that answers 0 hits; a reader that
goes away (``| head -1``) does not stop the import.

How a phase is held without a hook in the code: the import prints "<phase> done" on
stderr, a pipe the test reads. On seeing the phase it waits for, the test fills the
pipe, so the import blocks writing its next progress line, which it prints before its
COMMIT (SQLite's last one, "analyze done", precedes the COMMIT; PostgreSQL's swap is
held by a reader's lock instead). The signal then lands on an import that cannot have
committed.
"""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import os
import re
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from httpx import Response

from child_processes import environ_without_settings, free_port
from conftest import TestClient, copy_catalog, copy_database, settings_for
from reelsearch.catalog.importers.imdb import import_imdb
from reelsearch.config import Settings
from reelsearch.errors import CatalogNotImported
from reelsearch.http import create_app
from reelsearch.search.backends import open_blocking_engine
from reelsearch.search.engine import BlockingSearchEngine
from reelsearch.search.query import parse_search

# A cold interpreter's start plus a sample import on a loaded 2-core machine.
TIMEOUT = 120
SAMPLE_MOVIES = 58_788
NO_CATALOG = (
    "holds no catalog: no import has completed into it (none ran, or the first one was "
    "interrupted or refused). Run `reelsearch import ...` with the same database URL."
)

Databases = Callable[[str], str]


class HeldImport:
    """``reelsearch import sample`` in a process whose stderr the test reads, and holds."""

    def __init__(self, url: str) -> None:
        self.read_end, self.write_end = os.pipe()
        environ = environ_without_settings()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reelsearch", "--database-url", url, "import", "sample"],
            stdout=subprocess.DEVNULL,
            stderr=self.write_end,
            env=environ,
        )
        self.seen = b""

    def wait_for(self, line: str) -> None:
        """Read the progress until ``line`` (a phase's "... done") is printed, to its end."""
        deadline = time.monotonic() + TIMEOUT
        wanted = line.encode()
        # print() writes the text, then the newline: only then is the line behind it.
        while wanted not in self.seen or b"\n" not in self.seen.partition(wanted)[2]:
            ready, _, _ = select.select([self.read_end], [], [], deadline - time.monotonic())
            chunk = os.read(self.read_end, 65536) if ready else b""
            assert chunk, f"no {line!r} from the import; it printed: {self.text()}"
            self.seen += chunk

    def hold(self) -> None:
        """Fill the pipe: the import blocks at its next progress line, before its COMMIT."""
        # A file description of its own, non-blocking: the import's end stays blocking.
        filler = os.open(f"/proc/self/fd/{self.write_end}", os.O_WRONLY | os.O_NONBLOCK)
        try:
            for size in (4096, 1):
                while True:
                    try:
                        os.write(filler, b"\0" * size)
                    except BlockingIOError:
                        break
        finally:
            os.close(filler)

    def stop(self, number: signal.Signals) -> int:
        """Send ``number``, read what the import says until it exits, return its status."""
        self.process.send_signal(number)
        os.close(self.write_end)
        self.write_end = -1
        deadline = time.monotonic() + TIMEOUT
        while chunk := os.read(self.read_end, 65536):
            self.seen += chunk
            assert time.monotonic() < deadline, "the import did not end"
        return self.process.wait(TIMEOUT)

    def text(self) -> str:
        return self.seen.replace(b"\0", b"").decode(errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(TIMEOUT)
        for end in (self.read_end, self.write_end):
            if end >= 0:
                os.close(end)


@contextmanager
def held_import(url: str) -> Iterator[HeldImport]:
    job = HeldImport(url)
    try:
        yield job
    finally:
        job.close()


def answers(engine: BlockingSearchEngine) -> tuple[int, list[tuple[int, str]], int]:
    """The catalog version, and a search's hits and total, as a server would serve them."""
    result = engine.search(parse_search([("q", "matrix"), ("limit", "5")]))
    return engine.snapshot.version, [(h["id"], h["title"]) for h in result.hits], result.total


def word_files(db: Path) -> list[str]:
    """The word index, title postings and hit rows files and temporaries beside a SQLite
    catalog, by name."""
    return sorted(
        p.name
        for p in db.parent.iterdir()
        if any(kind in p.name for kind in (".words-", ".postings-", ".rows-"))
    )


@pytest.fixture
def sample_copy(sample_db: Path, tmp_path: Path) -> Path:
    """A private copy of the imported sample (version 1) with its word index, title
    postings and hit rows files."""
    path = tmp_path / "catalog" / sample_db.name  # the name catalog_meta's file name has
    path.parent.mkdir()
    copy_catalog(sample_db, path)
    return path


def wait_for_file(path: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


@pytest.mark.parametrize(
    ("number", "status"), [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGTERM, 128 + 15)]
)
def test_a_reimport_stopped_before_commit_leaves_the_old_catalog_answering(
    sample_copy: Path, number: signal.Signals, status: int
) -> None:
    """Killed (SIGKILL) or terminated (SIGTERM) once its word index file is written, a
    re-import leaves the catalog at version 1 and a running engine's answers unchanged;
    SIGTERM rolls back, says so and removes the files (word index, title postings, hit
    rows);
    SIGKILL leaves them (the next import removes them: the test below)."""
    settings = settings_for(sample_copy)
    engine = open_blocking_engine(settings)
    try:
        before = answers(engine)
        with held_import(settings.database_url) as job:
            job.wait_for("genres done")
            job.hold()  # it blocks at "word index done": the files written, not committed
            wait_for_file(sample_copy.parent / "sample.db.words-2")
            wait_for_file(sample_copy.parent / "sample.db.postings-2")
            wait_for_file(sample_copy.parent / "sample.db.rows-2")
            assert answers(engine) == before
            assert status == job.stop(number)
        assert not engine.refresh_if_changed()
        assert before == answers(engine)
    finally:
        engine.close()
    fresh = open_blocking_engine(settings)
    try:
        assert before == answers(fresh)
        assert 1 == before[0]
    finally:
        fresh.close()
    if number == signal.SIGTERM:
        assert (
            "reelsearch: interrupted (SIGTERM); an import in progress was rolled back: "
            "the catalog is unchanged"
        ) in job.text()
        assert ["sample.db.postings-1", "sample.db.rows-1", "sample.db.words-1"] == word_files(
            sample_copy
        )
    else:
        assert [
            "sample.db.postings-1",
            "sample.db.postings-2",
            "sample.db.rows-1",
            "sample.db.rows-2",
            "sample.db.words-1",
            "sample.db.words-2",
        ] == word_files(sample_copy)


def test_an_import_removes_the_files_of_imports_that_never_committed(
    small_copy: Settings, imdb_writer: Callable[..., dict[str, Path]]
) -> None:
    """Word index, title postings and hit rows files (and temporaries) numbered past the
    index the catalog names were left by killed imports: the next import removes them
    (also those below the version writes reached since), and keeps the named one and a
    worker's temporary putting it back."""
    db = Path(small_copy.sqlite_path)
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE catalog_meta SET value = 'copy.db.words-1 x' WHERE key = 'word_index'")
        conn.execute("UPDATE catalog_meta SET value = '3' WHERE key = 'version'")  # two writes
    (db.parent / "copy.db.words-1").write_bytes(b"the named index")
    orphans = ("copy.db.words-2", "copy.db.words-7", ".copy.db.words-3.k2j_x9.tmp",
               "copy.db.postings-2", ".copy.db.postings-3.q8w_e1.tmp",
               "copy.db.rows-2", ".copy.db.rows-5.z7y_q4.tmp")  # fmt: skip
    for orphan in orphans:
        (db.parent / orphan).write_bytes(b"left by a killed import")
    (db.parent / ".copy.db.words-1.a1b2c3.tmp").write_bytes(b"a worker restoring the named")

    report = import_imdb(small_copy, list(imdb_writer().values()))

    assert 4 == report.catalog_version
    assert [
        ".copy.db.words-1.a1b2c3.tmp",
        "copy.db.postings-4",
        "copy.db.rows-4",
        "copy.db.words-1",
        "copy.db.words-4",
    ] == word_files(db)


def test_a_first_import_killed_leaves_no_catalog_and_says_so(tmp_path: Path) -> None:
    """A first import killed mid-way leaves the schema at version 0: opening it, ``reelsearch
    search`` and ``reelsearch serve`` refuse it naming the database, not 0 hits."""
    settings = settings_for(tmp_path / "first.db")
    kill_first_import_then_open(settings)
    for command in (["search", "matrix"], ["serve", "--port", str(free_port())]):
        assert (1, "", f"reelsearch: {settings.database_url} {NO_CATALOG}\n") == reelsearch(
            settings.database_url, *command
        )


def kill_first_import_then_open(settings: Settings) -> None:
    """A first import into ``settings``' database, killed (SIGKILL) once its movies are
    read; opening the database then refuses it as holding no catalog."""
    with held_import(settings.database_url) as job:
        job.wait_for("movies done")
        job.hold()
        assert -signal.SIGKILL == job.stop(signal.SIGKILL)
    with pytest.raises(CatalogNotImported, match=re.escape(f"the catalog database {NO_CATALOG}")):
        open_blocking_engine(settings)


def reelsearch(url: str, *command: str) -> tuple[int, str, str]:
    """``reelsearch --database-url URL COMMAND...``: exit status, stdout, stderr."""
    environ = environ_without_settings()
    done = subprocess.run(
        [sys.executable, "-m", "reelsearch", "--database-url", url, *command],
        capture_output=True, text=True, env=environ, timeout=TIMEOUT,
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def test_an_import_whose_reader_went_away_completes(sample_copy: Path) -> None:
    """``reelsearch import sample 2>&1 | head -1``: the pipe closes after the first line;
    the import goes on quietly, commits version 2 and exits 0."""
    environ = environ_without_settings()
    process = subprocess.Popen(
        [sys.executable, "-m", "reelsearch", "--database-url", f"sqlite:///{sample_copy}",
         "import", "sample"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=environ,
    )  # fmt: skip
    assert process.stdout is not None
    first = process.stdout.readline()
    process.stdout.close()  # as `head -1` exits

    assert (0, b"reelsearch: reading the sample") == (
        process.wait(TIMEOUT),
        first[: len(b"reelsearch: reading the sample")],
    )
    with closing(sqlite3.connect(sample_copy)) as conn:
        assert [("2",)] == conn.execute(
            "SELECT value FROM catalog_meta WHERE key = 'version'"
        ).fetchall()
        assert [(SAMPLE_MOVIES,)] == conn.execute("SELECT count(*) FROM movies").fetchall()


# -- PostgreSQL ----------------------------------------------------------------


def pg_settings(postgres_databases: Databases, name: str) -> Settings:
    return replace(settings_for(Path("unused")), database_url=postgres_databases(name))


def version_row_is_free(settings: Settings) -> bool:
    """Whether a new import could take the import lock (catalog_meta's version row) now."""
    with psycopg.connect(settings.postgres_dsn) as conn:
        try:
            conn.execute("SELECT 1 FROM catalog_meta WHERE key = 'version' FOR UPDATE NOWAIT")
        except psycopg.errors.LockNotAvailable:
            return False
        return True


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("number", "status"), [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGTERM, 128 + 15)]
)
def test_postgres_reimport_stopped_at_the_swap_leaves_the_old_catalog(
    postgres_databases: Databases,
    imdb_writer: Callable[..., dict[str, Path]],
    number: signal.Signals,
    status: int,
) -> None:
    """A re-import stopped while it waits to swap its tables in (a reader holds them)
    leaves version 1 answering as before, and the import lock free within seconds."""
    settings = pg_settings(postgres_databases, f"held_{number.name.lower()}")
    import_imdb(settings, list(imdb_writer().values()))
    engine = open_blocking_engine(settings)
    try:
        before = answers(engine)
        with (
            psycopg.connect(settings.postgres_dsn) as reader,
            held_import(settings.database_url) as job,
        ):
            reader.execute("SELECT count(*) FROM movies")  # holds the table until it ends
            job.wait_for("analyze done")  # what follows is the swap, which waits for reader
            assert answers(engine) == before
            assert status == job.stop(number)
            reader.rollback()
        deadline = time.monotonic() + 10
        while not version_row_is_free(settings):
            assert time.monotonic() < deadline, "the killed import's transaction lives on"
            time.sleep(0.1)
        assert not engine.refresh_if_changed()
        assert before == answers(engine)
        assert (1, 30) == (before[0], engine.snapshot.movie_count)
    finally:
        engine.close()


@pytest.mark.postgres
def test_postgres_import_terminated_after_its_commit_says_it_committed(
    postgres_databases: Databases, imdb_writer: Callable[..., dict[str, Path]]
) -> None:
    """SIGTERM once the swap committed (during the VACUUM that follows) does not claim a
    rollback: the message names the version committed, and that version is served."""
    settings = pg_settings(postgres_databases, "after_commit")
    import_imdb(settings, list(imdb_writer().values()))
    with held_import(settings.database_url) as job:
        job.wait_for("swap done")
        job.hold()  # it blocks at "vacuum done"
        assert 128 + 15 == job.stop(signal.SIGTERM)
    assert (
        "reelsearch: interrupted (SIGTERM); the import had committed catalog version 2"
    ) in job.text()
    engine = open_blocking_engine(settings)
    try:
        assert (2, SAMPLE_MOVIES) == (engine.snapshot.version, engine.snapshot.movie_count)
    finally:
        engine.close()


@pytest.mark.postgres
def test_postgres_first_import_killed_leaves_no_catalog(postgres_databases: Databases) -> None:
    """A first PostgreSQL import killed mid-way: opening the database says it holds no
    catalog, with the reason, not 0 hits."""
    settings = pg_settings(postgres_databases, "first_killed")
    kill_first_import_then_open(settings)
    assert (1, "", f"reelsearch: {settings.database_url} {NO_CATALOG}\n") == reelsearch(
        settings.database_url, "search", "matrix"
    )


# -- a server on the path the killed first import wrote ------------------------------

ADMIN_TOKEN = "interrupted-import-admin-token-0123456789"


def test_a_server_whose_file_was_replaced_by_a_killed_first_import_refuses_with_the_reason(
    small_db: Path, tmp_path: Path, imdb_writer: Callable[..., dict[str, Path]]
) -> None:
    """The catalog file deleted under a server, and a first import into that path killed:
    /ready and searches are 503s saying no import has completed there (they were 200s with
    0 hits); once an import commits there, it is served."""
    path = tmp_path / "served.db"
    copy_database(small_db, path)
    settings = replace(settings_for(path), catalog_poll_seconds=0.05, admin_token=ADMIN_TOKEN)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert 200 == client.get("/ready").status_code
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        with held_import(settings.database_url) as job:
            job.wait_for("movies done")
            job.hold()
            assert -signal.SIGKILL == job.stop(signal.SIGKILL)

        reason = f"{path} {NO_CATALOG}"
        ready = poll(lambda: client.get("/ready", headers=admin), lambda r: r.status_code == 503)
        assert f"not ready: catalog: CatalogFileMissing: {reason}"[:200] in ready.text
        search = client.get("/v1/search", params={"q": "alien"})
        assert (503, {"code": "unavailable", "message": reason, "param": None}) == (
            search.status_code,
            search.json()["error"],
        )

        import_imdb(settings, list(imdb_writer().values()))
        poll(lambda: client.get("/ready"), lambda r: r.status_code == 200)
        hits = client.get("/v1/search", params={"q": "alien", "limit": 2}).json()["hits"]
        assert ["Alien", "Aliens"] == [hit["title"] for hit in hits]


def poll(get: Callable[[], Response], until: Callable[[Response], bool]) -> Response:
    """``get()`` again until ``until`` holds (the server's poll interval is 50 ms)."""
    deadline = time.monotonic() + 10
    while not until(response := get()):
        assert time.monotonic() < deadline, response.text
        time.sleep(0.05)
    return response
