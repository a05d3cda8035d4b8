"""The search engine on PostgreSQL: for many app processes sharing one catalog.

The algorithm is the SQLite engine's (``search/tiered.py``); here the words
are a tsquery against a GIN-indexed tsvector on movies, and every read is
awaited on a pooled asyncpg connection, so one worker serves many searches
while PostgreSQL works.

Searches run in read committed, one statement at a time and without an
explicit transaction: a search is one to three reads, and BEGIN/COMMIT
would add two round trips to each. An import swaps the whole catalog in one
commit, so each statement sees the old catalog or the new one. The snapshot
(vocabulary, genres, facets) is read in one repeatable-read, read-only
transaction, as its parts must agree with each other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio.to_thread
import asyncpg

from reelsearch.config import Settings
from reelsearch.db.postgres import PostgresPool
from reelsearch.errors import ConnectionLost
from reelsearch.search.deadline import Deadline
from reelsearch.search.engine import Hit, SearchResult
from reelsearch.search.query import SearchQuery
from reelsearch.search.readers import PostgresReader
from reelsearch.search.snapshot import CatalogSnapshot, read_catalog_facts, read_version
from reelsearch.search.sql import POSTGRESQL
from reelsearch.search.stored_words import PostgresWordCache
from reelsearch.search.tiered import TieredSearch

T = TypeVar("T")
logger = logging.getLogger("reelsearch.search")

# An import swaps in new tables; statements asyncpg prepared against the old
# ones fail once with these, and succeed when prepared again.
_STALE_PLAN_ERRORS = (asyncpg.InvalidCachedStatementError, asyncpg.UndefinedTableError)


class PostgresSearchEngine:
    """Searches a PostgreSQL catalog through a pool of asyncpg connections."""

    def __init__(self, settings: Settings, pool: PostgresPool, snapshot: CatalogSnapshot) -> None:
        self.settings = settings
        self.pool = pool
        self.snapshot = snapshot
        self.tiered = TieredSearch(settings, POSTGRESQL)
        self._refresh_lock = asyncio.Lock()

    @classmethod
    async def open(cls, settings: Settings) -> PostgresSearchEngine:
        pool = PostgresPool(settings)
        try:
            snapshot = await _load_snapshot(pool)
        except BaseException:
            await pool.close()
            raise
        return cls(settings, pool, snapshot)

    def deadline(self) -> Deadline:
        return Deadline(self.settings.search_deadline_ms / 1000)

    def rules_version(self) -> str:
        return self.tiered.rules.version

    async def search(self, query: SearchQuery, deadline: Deadline | None = None) -> SearchResult:
        snapshot = self.snapshot
        return await self._read(
            lambda db: self.tiered.search(db, snapshot, query), deadline or self.deadline()
        )

    async def autocomplete(self, query: SearchQuery, deadline: Deadline | None = None) -> list[Hit]:
        snapshot = self.snapshot
        return await self._read(
            lambda db: self.tiered.autocomplete(db, snapshot, query), deadline or self.deadline()
        )

    async def get_movie(self, movie_id: int | str) -> Hit | None:
        return await self._read(lambda db: self.tiered.get_movie(db, movie_id))

    async def refresh_if_changed(self) -> bool:
        """Reload the snapshot if an import committed a new catalog; True if it did.

        The relevance rules are re-read here too, if their files changed: the
        poller's job, never a request's."""
        await anyio.to_thread.run_sync(self.tiered.rules.reload_if_changed)
        if await self._version() == self.snapshot.version:
            return False
        async with self._refresh_lock:
            if await self._version() == self.snapshot.version:
                return False
            self.snapshot = await _load_snapshot(self.pool, self.snapshot)
            return True

    async def ping(self) -> None:
        await self._version()

    async def close(self) -> None:
        await self.pool.close()

    async def _version(self) -> int:
        return await self._read(read_version)

    async def _read(
        self, read: Callable[[PostgresReader], Awaitable[T]], deadline: Deadline | None = None
    ) -> T:
        """Run ``read`` on a pooled connection; once more on a fresh one if that one was dead.

        Without pre-ping, a server restart is found by the first read on a
        broken connection; the pool then replaces every connection opened
        before it, and a search only reads, so it can safely run twice. If the
        server is still down, the second attempt fails too: a 503.
        """
        try:
            return await self._read_once(read, deadline)
        except ConnectionLost as exc:
            logger.info("lost a pooled connection (%s); reading again on a fresh one", exc)
            return await self._read_once(read, deadline)

    async def _read_once(
        self, read: Callable[[PostgresReader], Awaitable[T]], deadline: Deadline | None
    ) -> T:
        """Run ``read`` on a pooled connection; once more if an import made its plans stale."""
        async with self.pool.connection() as conn:
            try:
                return await read(PostgresReader(conn, deadline))
            except (*_STALE_PLAN_ERRORS, asyncpg.InternalServerError) as exc:
                # XX000 "could not open relation with OID n": a statement that
                # started on the old tables as the swap committed.
                if isinstance(exc, asyncpg.InternalServerError) and "relation" not in str(exc):
                    raise
                logger.info("catalog tables were swapped by an import; preparing again")
                return await read(PostgresReader(conn, deadline))


async def _load_snapshot(
    pool: PostgresPool, previous: CatalogSnapshot | None = None
) -> CatalogSnapshot:
    """The catalog's snapshot; after writes only, ``previous``'s index and moved facets."""
    async with (
        pool.connection() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        facts = await read_catalog_facts(
            PostgresReader(conn),
            POSTGRESQL,
            PostgresWordCache(pool.settings.word_index_cache),
            previous,
        )
    # Building the typo index takes seconds for a large catalog: not on the event loop.
    return await anyio.to_thread.run_sync(CatalogSnapshot.build, facts)
