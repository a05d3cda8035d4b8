"""SQLite connections tuned for a read-heavy service.

Readers and the writer never share a connection:

- a pool of read-only connections (SQLAlchemy ``QueuePool``) serves searches,
  one per thread that may run a query at once;
- imports open one writer connection of their own, so a long import never
  holds a connection a search needs.

WAL lets readers keep reading the last committed catalog while the writer
works, which is what makes an import invisible until it commits.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.pool import NullPool, QueuePool

from reelsearch.config import Settings
from reelsearch.db.catalog_file import (
    FileIdentity,
    discard_old_log,
    identity_of,
    log_of,
    reopen_turn,
)
from reelsearch.db.timing import StatementTimes, TimedConnection
from reelsearch.errors import CatalogError, CatalogFileMissing


def _apply_pragmas(conn: sqlite3.Connection, settings: Settings, *, readonly: bool) -> None:
    # WAL: readers see the last commit while a writer works; set by the writer
    # (it is persistent in the file), harmless to repeat.
    if not readonly:
        conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode is durable except for the last commits on power loss:
    # an import can be re-run, so the fsync per commit of FULL buys nothing here.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA mmap_size={int(settings.sqlite_mmap_bytes)}")
    conn.execute(f"PRAGMA cache_size=-{int(settings.sqlite_cache_kib)}")
    conn.execute(f"PRAGMA busy_timeout={int(settings.sqlite_busy_timeout_ms)}")
    conn.execute("PRAGMA temp_store=MEMORY")  # sorts for ORDER BY year etc. stay in RAM
    conn.execute("PRAGMA foreign_keys=ON")
    if readonly:
        conn.execute("PRAGMA query_only=ON")  # a bug in a read path can never write


def connect_writer(settings: Settings) -> sqlite3.Connection:
    """The single writer connection, in autocommit mode (transactions are explicit)."""
    path = settings.sqlite_path
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    _apply_pragmas(conn, settings, readonly=False)
    return conn


def make_sync_engine(settings: Settings) -> sqlalchemy.Engine:
    """A SQLAlchemy engine for migrations and admin work (not the search hot path)."""
    if settings.backend == "postgresql":
        return sqlalchemy.create_engine(settings.sync_database_url, poolclass=NullPool)
    engine = sqlalchemy.create_engine(settings.sync_database_url, poolclass=QueuePool)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        _apply_pragmas(dbapi_conn, settings, readonly=False)

    return engine


class ReadPool:
    """A fixed pool of read-only SQLite connections, checked out per search.

    SQLAlchemy's ``QueuePool`` does the bookkeeping (size, timeout, returning a
    connection after an exception); the search code uses the raw DB-API
    connection because the Core layer's per-statement work costs more than
    the indexed lookups themselves.

    ``follow_file()`` notices the catalog file being replaced or deleted under
    it (db/catalog_file.py): a new file is re-opened without the old file's
    log; a deleted one makes every read fail with the reason (-> 503).
    """

    def __init__(self, settings: Settings) -> None:
        path = settings.sqlite_path
        if path != ":memory:" and not Path(path).exists():
            raise CatalogError(
                f"No catalog at {path!r}. Run `reelsearch import sample` first "
                "or set REELSEARCH_DATABASE_URL."
            )
        self.path = path
        self.size = settings.db_read_pool_size
        self._settings = settings
        self._uri = f"file:{Path(path).resolve()}?mode=ro"
        # Set while the catalog file is gone: why reads are refused.
        self.problem: str | None = None
        self._file: FileIdentity | None = None  # the file the pool reads
        self._log: FileIdentity | None = None  # its log, as last seen
        # For the metrics: every statement's time by shape, and the waits for a
        # connection (the engine's own slot gate, see note_wait, and this pool's).
        self.statement_times = StatementTimes()
        self._counts_lock = threading.Lock()
        self._checkouts = 0
        self._waits = 0
        self._wait_seconds = 0.0
        self._pool = self._open()

    def _connect(self) -> sqlite3.Connection:
        # A connection opened on a file other than the pool's would pair it with
        # the old file's log: refuse (-> 503) until follow_file() has re-opened.
        if identity_of(self.path) != self._file:
            raise CatalogFileMissing(f"the catalog file {self.path} changed; re-opening it")
        timed = self._settings.metrics_enabled  # off: nothing on the statement path
        conn = sqlite3.connect(
            self._uri,
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            factory=TimedConnection if timed else sqlite3.Connection,
        )
        _apply_pragmas(conn, self._settings, readonly=True)
        if isinstance(conn, TimedConnection):  # after the pragmas: they are not timed
            conn.times = self.statement_times
        return conn

    def _open(self) -> QueuePool:
        """A pool on the file at the path now, noting which file and log that is.

        Every connection is opened here, not lazily: one opened later could
        meet a file replaced in between.
        """
        while True:
            self._file = identity_of(self.path)
            pool = QueuePool(
                self._connect,  # type: ignore[arg-type]  # sqlite3.Connection is a DB-API one
                pool_size=self.size,
                max_overflow=0,
                timeout=30,
                # connection() always ends its read transaction with COMMIT, so a
                # rollback on every return would be a second, wasted round trip.
                reset_on_return=None,
            )
            try:
                opened = [pool.connect() for _ in range(self.size)]
            except CatalogFileMissing:  # replaced while opening: again, on the new one
                pool.dispose()
                continue
            for fairy in opened:  # the first read opens the log: from then on it is this file's
                fairy.dbapi_connection.execute("SELECT 1 FROM sqlite_master LIMIT 1")  # type: ignore[union-attr]
                fairy.close()
            if self._file == identity_of(self.path):  # not replaced meanwhile
                self._log = identity_of(log_of(self.path))
                return pool
            pool.dispose()

    def follow_file(self) -> bool:
        """Check the catalog file at the path; True if it was replaced and the new one opened.

        The caller reloads what it read from the old file. A deleted file sets
        ``problem`` (reads fail with it) until a file is there again.
        """
        if self.path == ":memory:":
            return False
        found = identity_of(self.path)
        if found == self._file:
            self.problem = None
            self._log = identity_of(log_of(self.path)) or self._log
            return False
        if found is None:
            self.problem = (
                f"the catalog file {self.path} was deleted; put a catalog there "
                "(reelsearch import) and it is opened within a poll interval"
            )
            return False
        with reopen_turn(self.path):
            try:
                discard_old_log(self.path, self._log)
            except OSError as exc:
                self.problem = (
                    f"the catalog file {self.path} was replaced, but the old file's log "
                    f"beside it cannot be removed ({exc}); restart the server"
                )
                return False
            old, self._pool = self._pool, self._open()
        old.dispose()  # idle connections to the old file; busy ones close when returned
        self.problem = None
        return True

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A read connection inside one read transaction (one consistent snapshot)."""
        if self.problem is not None:
            raise CatalogFileMissing(self.problem)
        pool = self._pool
        if pool.checkedin() == 0:  # every connection is busy: this read waits for one
            started = time.perf_counter()
            fairy = pool.connect()
            self.note_wait(time.perf_counter() - started)
        else:
            fairy = pool.connect()
        self._checkouts += 1  # may run in threads: a rare lost increment is tolerable here
        try:
            conn: sqlite3.Connection = fairy.dbapi_connection  # type: ignore[assignment]
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")
        finally:
            fairy.close()

    def status(self) -> str:
        return self._pool.status()

    def note_wait(self, seconds: float) -> None:
        """Count a read that waited ``seconds`` for a connection (here or at the engine's gate)."""
        with self._counts_lock:
            self._waits += 1
            self._wait_seconds += seconds

    def stats(self) -> dict[str, float]:
        """A reading for metrics: the configured size, connections in use and idle, and
        checkouts, waits and time waited since start."""
        return {"size": self.size, "in_use": self._pool.checkedout(),
                "idle": self._pool.checkedin(), "checkouts": self._checkouts,
                "waits": self._waits, "wait_seconds": self._wait_seconds}  # fmt: skip

    def dispose(self) -> None:
        self._pool.dispose()
