"""SQLite connections tuned for a read-heavy service.

Readers and the writer never share a connection:

- a fixed stack of read-only connections (``ConnectionStack``) serves searches,
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

# sqlite3's own execute: BEGIN and COMMIT are never timed (they fetch nothing), so
# they skip a timing connection's Python execute.
_execute_untimed = sqlite3.Connection.execute


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

    A ``ConnectionStack`` does the bookkeeping (size, timeout, returning a
    connection after an exception): a checkout is a list pop, where
    SQLAlchemy's ``QueuePool`` cost about 15 us per search (a tenth of a cold
    search's engine time); the search code uses the raw DB-API connection
    because the Core layer's per-statement work costs more than the indexed
    lookups themselves.

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
        # Set by the engine while the file at the path holds no catalog yet (a first
        # import running, or killed): kept through every poll until a read of the file
        # finds one (``lend(despite_held=True)``), so no read slips through meanwhile.
        self.held_problem: str | None = None
        self._file: FileIdentity | None = None  # the file the pool reads
        self._log: FileIdentity | None = None  # its log, as last seen
        # For the metrics: every statement's time by shape, and the waits for a
        # connection (the engine's own slot gate, see note_wait, and this pool's).
        self.statement_times = StatementTimes()
        # What a search's reader records its statements into (None: metrics off).
        self.timed_statements = self.statement_times if settings.metrics_enabled else None
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

    def _open(self) -> ConnectionStack:
        """A pool on the file at the path now, noting which file and log that is.

        Every connection is opened here, not lazily: one opened later could
        meet a file replaced in between.
        """
        while True:
            self._file = identity_of(self.path)
            opened: list[sqlite3.Connection] = []
            try:
                for _ in range(self.size):
                    opened.append(self._connect())
            except CatalogFileMissing:  # replaced while opening: again, on the new one
                for conn in opened:
                    conn.close()
                continue
            for conn in opened:  # the first read opens the log: from then on it is this file's
                conn.execute("SELECT 1 FROM sqlite_master LIMIT 1")
            if self._file == identity_of(self.path):  # not replaced meanwhile
                self._log = identity_of(log_of(self.path))
                return ConnectionStack(opened, timeout=30)
            for conn in opened:
                conn.close()

    def follow_file(self) -> bool:
        """Check the catalog file at the path; True if it was replaced and the new one opened.

        The caller reloads what it read from the old file. A deleted file sets
        ``problem`` (reads fail with it) until a file is there again.
        """
        if self.path == ":memory:":
            return False
        found = identity_of(self.path)
        if found == self._file:
            self.problem = self.held_problem
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
        self.problem = self.held_problem  # the caller's read of the new file decides
        return True

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A read connection inside one read transaction (one consistent snapshot)."""
        conn, pool = self.lend()
        try:
            yield conn
        finally:
            self.end(conn, pool)

    def lend(self, *, despite_held: bool = False) -> tuple[sqlite3.Connection, ConnectionStack]:
        """A read connection in a new read transaction, and the stack it goes back to:
        ``connection()`` without the context manager, for the search path (whose
        generator and ``__enter__``/``__exit__`` cost more than the list pop).
        The caller must call ``end(conn, stack)``, also after an exception. With
        ``despite_held``, lent while ``held_problem`` is the problem (the engine's
        check of whether the file now holds a catalog)."""
        if self.problem is not None and not (despite_held and self.problem == self.held_problem):
            raise CatalogFileMissing(self.problem)
        pool = self._pool  # the one it came from, even if follow_file() replaces it meanwhile
        try:
            conn = self._take(pool)
        except StackDisposed:  # replaced while this waited: wait on the new file's stack
            pool = self._pool
            conn = self._take(pool)
        self._checkouts += 1  # may run in threads: a rare lost increment is tolerable here
        try:
            _execute_untimed(conn, "BEGIN")
        except BaseException:
            pool.give_back(conn)
            raise
        return conn, pool

    def end(
        self, conn: sqlite3.Connection, pool: ConnectionStack, *, replace: bool = False
    ) -> None:
        """Close the read transaction of a ``lend`` and give the connection back; with
        ``replace``, a fresh connection to the same file in its place (a statement
        was interrupted on it: sqlite3 re-prepares that statement on every later
        execute, see ``SqliteReader.interrupted``)."""
        try:
            _execute_untimed(conn, "COMMIT")
        finally:
            if replace:
                conn = self._replacement(conn)
            pool.give_back(conn)

    def _replacement(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        """A new connection for ``conn``, which is closed; ``conn`` itself if none can be
        opened now (the file changed: follow_file() re-opens the whole pool)."""
        try:
            fresh = self._connect()
        except (CatalogError, sqlite3.Error):
            return conn
        conn.close()
        return fresh

    def status(self) -> str:
        return f"Pool size: {self.size}  Connections idle: {self._pool.idle()}"

    def _take(self, pool: ConnectionStack) -> sqlite3.Connection:
        """A connection from ``pool``, counting the wait when every one is lent."""
        if pool.idle():
            return pool.take()
        started = time.perf_counter()
        conn = pool.take()
        self.note_wait(time.perf_counter() - started)
        return conn

    def note_wait(self, seconds: float) -> None:
        """Count a read that waited ``seconds`` for a connection (here or at the engine's gate)."""
        with self._counts_lock:
            self._waits += 1
            self._wait_seconds += seconds

    def stats(self) -> dict[str, float]:
        """A reading for metrics: the configured size, connections in use and idle, and
        checkouts, waits and time waited since start."""
        idle = self._pool.idle()
        return {"size": self.size, "in_use": self.size - idle, "idle": idle,
                "checkouts": self._checkouts, "waits": self._waits,
                "wait_seconds": self._wait_seconds}  # fmt: skip

    def dispose(self) -> None:
        self._pool.dispose()


class ConnectionStack:
    """A fixed set of open connections, lent out last-returned first.

    Taking one is a list pop (atomic under the GIL) when one is idle; only
    when all are lent does a caller wait, on a condition, up to ``timeout``
    seconds. Last-returned first keeps the warmest connection (its page
    cache) busiest. After ``dispose`` idle connections are closed and lent
    ones close as they come back.
    """

    __slots__ = ("_disposed", "_idle", "_returned", "_timeout", "_waiting")

    def __init__(self, connections: list[sqlite3.Connection], *, timeout: float) -> None:
        self._idle = list(connections)
        self._returned = threading.Condition(threading.Lock())
        self._timeout = timeout
        self._disposed = False
        self._waiting = 0  # callers waiting on the condition: give_back notifies only then

    def take(self) -> sqlite3.Connection:
        try:
            return self._idle.pop()
        except IndexError:
            pass
        deadline = time.monotonic() + self._timeout
        with self._returned:
            while True:  # a taker outside the lock may pop what was given back: try again
                try:
                    return self._idle.pop()
                except IndexError:
                    pass
                if self._disposed:
                    raise StackDisposed("the connections were closed while waiting for one")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CatalogError(
                        f"no catalog connection came free within {self._timeout:.0f} s"
                    )
                self._waiting += 1
                try:
                    self._returned.wait(left)
                finally:
                    self._waiting -= 1

    def give_back(self, conn: sqlite3.Connection) -> None:
        with self._returned:
            if not self._disposed:
                self._idle.append(conn)
                if self._waiting:  # Condition.notify is Python code: skipped when none waits
                    self._returned.notify()
                return
        conn.close()

    def idle(self) -> int:
        return len(self._idle)

    def dispose(self) -> None:
        """Close the idle connections now, lent ones as they come back; a taker
        waiting here gets ``StackDisposed``."""
        with self._returned:
            self._disposed = True
            idle, self._idle = self._idle, []
            self._returned.notify_all()
        for conn in idle:
            conn.close()


class StackDisposed(CatalogError):
    """The connection stack was disposed while a caller waited for a connection."""
