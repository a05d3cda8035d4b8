"""The search engine on SQLite: the embedded default.

Reads are sub-millisecond and hold the GIL for most of their time, so by
default each statement runs on the event loop (docs/decisions/0003-catalog-
reads-inline.md); with ``search_in_threads`` every statement goes to a
thread. Either way a search is held to its deadline, and a statement that
runs long leaves the event loop for a thread (``SqliteReader``), so one slow
search never stalls the worker's other requests for longer than a slice.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread

from reelsearch.config import Settings
from reelsearch.db import ReadPool
from reelsearch.search.deadline import Deadline
from reelsearch.search.engine import Hit, SearchResult
from reelsearch.search.query import SearchQuery
from reelsearch.search.readers import SqliteReader, run_inline
from reelsearch.search.snapshot import CatalogSnapshot, read_version
from reelsearch.search.sql import SQLITE
from reelsearch.search.tiered import TieredSearch

# A statement still running after this long on the event loop is stopped
# and run again in a thread: the longest any one statement holds up the
# worker's other requests. Cold searches' statements take well under it.
INLINE_SLICE_SECONDS = 0.02


class SqliteSearchEngine:
    """Searches the catalog through a pool of read-only SQLite connections."""

    def __init__(self, settings: Settings, pool: ReadPool, snapshot: CatalogSnapshot) -> None:
        self.settings = settings
        self.pool = pool
        self.snapshot = snapshot
        self.tiered = TieredSearch(settings, SQLITE)
        # A search holds its connection across awaits: no more searches at once
        # than connections, the others wait here without blocking the loop.
        self._connections = anyio.Semaphore(pool.size)
        self._threads = anyio.CapacityLimiter(pool.size)
        self._inline_seconds = 0.0 if settings.search_in_threads else INLINE_SLICE_SECONDS
        self._refresh_lock = threading.Lock()

    @classmethod
    async def open(cls, settings: Settings) -> SqliteSearchEngine:
        def load() -> tuple[ReadPool, CatalogSnapshot]:
            pool = ReadPool(settings)
            try:
                with pool.connection() as conn:
                    return pool, CatalogSnapshot.load(conn)
            except BaseException:
                pool.dispose()
                raise

        # Building the typo index of a large catalog takes seconds: not on the loop.
        return cls(settings, *await anyio.to_thread.run_sync(load))

    def deadline(self) -> Deadline:
        return Deadline(self.settings.search_deadline_ms / 1000)

    def rules_version(self) -> str:
        return self.tiered.rules.version

    async def search(self, query: SearchQuery, deadline: Deadline | None = None) -> SearchResult:
        snapshot = self.snapshot
        async with self._reader(deadline) as db:
            return await self.tiered.search(db, snapshot, query)

    async def autocomplete(self, query: SearchQuery, deadline: Deadline | None = None) -> list[Hit]:
        snapshot = self.snapshot
        async with self._reader(deadline) as db:
            return await self.tiered.autocomplete(db, snapshot, query)

    async def get_movie(self, movie_id: int | str) -> Hit | None:
        async with self._reader(None) as db:
            return await self.tiered.get_movie(db, movie_id)

    async def refresh_if_changed(self) -> bool:
        """Reload the snapshot if an import committed a new catalog, or another file
        now stands at the catalog's path; True if it did.

        The relevance rules are re-read here too, if their files changed: the
        poller's job, never a request's."""
        await anyio.to_thread.run_sync(self.tiered.rules.reload_if_changed)
        # Another file at the path: reload it, whatever its version (db/catalog_file.py).
        other = await anyio.to_thread.run_sync(self.pool.follow_file)
        if await self._version() == self.snapshot.version and not other:
            return False
        return await anyio.to_thread.run_sync(self._reload, other)

    def _reload(self, other: bool) -> bool:
        with self._refresh_lock, self.pool.connection() as conn:
            if run_inline(read_version(SqliteReader(conn))) == self.snapshot.version and not other:
                return False
            # One assignment: readers never see half. After writes only, the new one
            # keeps the mapped word index and moves the facets (another file: reread all).
            self.snapshot = CatalogSnapshot.load(conn, None if other else self.snapshot)
            return True

    async def ping(self) -> None:
        await self._version()

    async def close(self) -> None:
        self.pool.dispose()

    async def _version(self) -> int:
        async with self._reader(None) as db:
            return await read_version(db)

    @asynccontextmanager
    async def _reader(self, deadline: Deadline | None) -> AsyncIterator[SqliteReader]:
        """A pooled connection in one read transaction, its statements held to ``deadline``."""
        slots = self._connections
        try:
            slots.acquire_nowait()  # the common case: no wait, no trip through the loop
        except anyio.WouldBlock:
            await slots.acquire()
        try:
            with self.pool.connection() as conn:
                reader = SqliteReader(
                    conn,
                    deadline or self.deadline(),
                    threads=self._threads,
                    inline_seconds=self._inline_seconds,
                )
                reader.watch()
                try:
                    yield reader
                finally:
                    reader.unwatch()
        finally:
            slots.release()
