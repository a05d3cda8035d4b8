"""The search engine on SQLite: the embedded default.

Reads are sub-millisecond and hold the GIL for most of their time, so the
engine is blocking; ``AsyncSqliteEngine`` hands it to the HTTP layer inline
or through a thread pool (docs/decisions/0003-catalog-reads-inline.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

from reelsearch.config import Settings
from reelsearch.db import ReadPool
from reelsearch.search.engine import Hit, SearchResult
from reelsearch.search.query import SearchQuery
from reelsearch.search.snapshot import CatalogSnapshot, read_version
from reelsearch.search.sql import SQLITE, SqliteReader, run_inline
from reelsearch.search.tiered import TieredSearch

A = TypeVar("A")
T = TypeVar("T")


class SqliteSearchEngine:
    """Searches the catalog through a pool of read-only SQLite connections."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool = ReadPool(settings)
        self.tiered = TieredSearch(settings, SQLITE)
        self._refresh_lock = threading.Lock()
        with self.pool.connection() as conn:
            self.snapshot = CatalogSnapshot.load(conn)

    def search(self, query: SearchQuery) -> SearchResult:
        snapshot = self.snapshot
        with self.pool.connection() as conn:
            return run_inline(self.tiered.search(SqliteReader(conn), snapshot, query))

    def autocomplete(self, query: SearchQuery) -> list[Hit]:
        snapshot = self.snapshot
        with self.pool.connection() as conn:
            return run_inline(self.tiered.autocomplete(SqliteReader(conn), snapshot, query))

    def get_movie(self, movie_id: int | str) -> Hit | None:
        with self.pool.connection() as conn:
            return run_inline(self.tiered.get_movie(SqliteReader(conn), movie_id))

    def refresh_if_changed(self) -> bool:
        """Reload the snapshot if an import committed a new catalog; True if it did."""
        other = self.pool.follow_file()  # another file at the path: reload it, whatever its version
        if self._version() == self.snapshot.version and not other:
            return False
        with self._refresh_lock, self.pool.connection() as conn:
            if run_inline(read_version(SqliteReader(conn))) == self.snapshot.version and not other:
                return False
            self.snapshot = CatalogSnapshot.load(conn)  # one assignment: readers never see half
            return True

    def ping(self) -> None:
        self._version()

    def close(self) -> None:
        self.pool.dispose()

    def _version(self) -> int:
        with self.pool.connection() as conn:
            return run_inline(read_version(SqliteReader(conn)))


class AsyncSqliteEngine:
    """The blocking SQLite engine behind the async ``SearchEngine`` interface.

    Inline (the default) runs each read on the event loop; with
    ``search_in_threads`` reads go to threads, one per pooled connection.
    Snapshot reloads always go to a thread: building the typo index of a
    large catalog takes seconds.
    """

    def __init__(self, engine: SqliteSearchEngine) -> None:
        self.engine = engine
        threads = engine.settings.db_read_pool_size if engine.settings.search_in_threads else 0
        self._limiter = anyio.CapacityLimiter(threads) if threads else None

    @classmethod
    async def open(cls, settings: Settings) -> AsyncSqliteEngine:
        return cls(await anyio.to_thread.run_sync(SqliteSearchEngine, settings))

    @property
    def snapshot(self) -> CatalogSnapshot:
        return self.engine.snapshot

    async def search(self, query: SearchQuery) -> SearchResult:
        return await self._call(self.engine.search, query)

    async def autocomplete(self, query: SearchQuery) -> list[Hit]:
        return await self._call(self.engine.autocomplete, query)

    async def get_movie(self, movie_id: int | str) -> Hit | None:
        return await self._call(self.engine.get_movie, movie_id)

    async def _call(self, read: Callable[[A], T], argument: A) -> T:
        """Run a blocking read inline, or in the pool's threads if so configured."""
        if self._limiter is None:
            return read(argument)
        return await anyio.to_thread.run_sync(read, argument, limiter=self._limiter)

    async def refresh_if_changed(self) -> bool:
        return await anyio.to_thread.run_sync(self.engine.refresh_if_changed)

    async def ping(self) -> None:
        self.engine.ping()

    async def close(self) -> None:
        self.engine.close()
