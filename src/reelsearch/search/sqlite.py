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
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import anyio.to_thread

from reelsearch.config import Settings
from reelsearch.db import ReadPool
from reelsearch.errors import CatalogNotImported
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

T = TypeVar("T")


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
        # Another file came to the path and its snapshot is not loaded yet.
        self._other_file = False

    @classmethod
    async def open(cls, settings: Settings) -> SqliteSearchEngine:
        def load() -> tuple[ReadPool, CatalogSnapshot]:
            pool = ReadPool(settings)
            try:
                with pool.connection() as conn:
                    return pool, CatalogSnapshot.load(
                        conn, postings_max_movies=settings.title_postings_max_movies
                    )
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
        return await self._read(deadline, lambda db: self.tiered.search(db, snapshot, query))

    async def autocomplete(self, query: SearchQuery, deadline: Deadline | None = None) -> list[Hit]:
        snapshot = self.snapshot
        return await self._read(deadline, lambda db: self.tiered.autocomplete(db, snapshot, query))

    async def get_movie(self, movie_id: int | str) -> Hit | None:
        return await self._read(None, lambda db: self.tiered.get_movie(db, movie_id))

    async def refresh_if_changed(self) -> bool:
        """Reload the snapshot if an import committed a new catalog, or another file
        now stands at the catalog's path; True if it did.

        The relevance rules are re-read here too, if their files changed: the
        poller's job, never a request's."""
        await anyio.to_thread.run_sync(self.tiered.rules.reload_if_changed)
        # Another file at the path: reload it, whatever its version (db/catalog_file.py).
        if await anyio.to_thread.run_sync(self.pool.follow_file):
            self._other_file = True
        pool = self.pool
        try:
            version = await self._read(None, read_version, despite_held=True)
            if pool.held_problem is not None:  # a catalog is there now
                if pool.problem == pool.held_problem:
                    pool.problem = None
                pool.held_problem = None
            if version == self.snapshot.version and not self._other_file:
                return False
            changed = await anyio.to_thread.run_sync(self._reload, self._other_file)
        except CatalogNotImported:
            # The new file holds no catalog yet (its first import running, or killed):
            # reads refuse with the reason (503s) rather than find 0 hits in it, until
            # a poll finds one there (the pool keeps the problem through its polls).
            pool.held_problem = pool.problem = str(CatalogNotImported(self.settings.sqlite_path))
            raise
        self._other_file = False
        return changed

    def _reload(self, other: bool) -> bool:
        with self._refresh_lock, self.pool.connection() as conn:
            if run_inline(read_version(SqliteReader(conn))) == self.snapshot.version and not other:
                return False
            # One assignment: readers never see half. After writes only, the new one
            # keeps the mapped word index and moves the facets (another file: reread all).
            self.snapshot = CatalogSnapshot.load(
                conn,
                None if other else self.snapshot,
                postings_max_movies=self.settings.title_postings_max_movies,
            )
            return True

    async def ping(self) -> None:
        await self._version()

    async def close(self) -> None:
        self.pool.dispose()

    async def _version(self) -> int:
        return await self._read(None, read_version)

    async def _read(
        self,
        deadline: Deadline | None,
        work: Callable[[SqliteReader], Awaitable[T]],
        *,
        despite_held: bool = False,
    ) -> T:
        """``work`` on a pooled connection in one read transaction, its statements held
        to ``deadline``. A plain call, not an async context manager: the async
        generator behind one cost a few microseconds per search."""
        slots = self._connections
        try:
            slots.acquire_nowait()  # the common case: no wait, no trip through the loop
        except anyio.WouldBlock:
            started = time.perf_counter()
            await slots.acquire()
            self.pool.note_wait(time.perf_counter() - started)  # the pool's wait metrics
        try:
            pool = self.pool
            # Not `with pool.connection()`: a generator per search.
            conn, stack = pool.lend(despite_held=despite_held)
            reader = None
            try:
                reader = SqliteReader(
                    conn,
                    deadline or self.deadline(),
                    threads=self._threads,
                    inline_seconds=self._inline_seconds,
                    times=pool.timed_statements,
                )
                reader.watch()
                try:
                    return await work(reader)
                finally:
                    reader.unwatch()
            finally:
                pool.end(conn, stack, replace=reader is not None and reader.interrupted)
        finally:
            slots.release()
