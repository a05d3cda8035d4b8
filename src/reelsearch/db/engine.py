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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.pool import NullPool, QueuePool

from reelsearch.config import Settings
from reelsearch.errors import CatalogError


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
    """

    def __init__(self, settings: Settings) -> None:
        path = settings.sqlite_path
        if path != ":memory:" and not Path(path).exists():
            raise CatalogError(
                f"No catalog at {path!r}. Run `reelsearch import sample` first "
                "or set REELSEARCH_DATABASE_URL."
            )
        uri = f"file:{Path(path).resolve()}?mode=ro"

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            _apply_pragmas(conn, settings, readonly=True)
            return conn

        self.size = settings.db_read_pool_size
        self._pool = QueuePool(
            connect,  # type: ignore[arg-type]  # sqlite3.Connection is a DB-API connection
            pool_size=self.size,
            max_overflow=0,
            timeout=30,
            # connection() always ends its read transaction with COMMIT, so a
            # rollback on every return would be a second, wasted round trip.
            reset_on_return=None,
        )

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A read connection inside one read transaction (one consistent snapshot)."""
        fairy = self._pool.connect()
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

    def stats(self) -> dict[str, int]:
        """A reading for metrics: the configured size, connections in use and idle."""
        return {"size": self.size, "in_use": self._pool.checkedout(),
                "idle": self._pool.checkedin()}  # fmt: skip

    def dispose(self) -> None:
        self._pool.dispose()
