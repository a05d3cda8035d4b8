"""The search engine on PostgreSQL: for many app processes sharing one catalog.

The algorithm is the SQLite engine's (``search/tiered.py``); here the words
are a tsquery against a GIN-indexed tsvector on movies, and every read is
awaited on a pooled asyncpg connection, so one worker serves many searches
while PostgreSQL works.

A relevance page is one statement (``search/postgres_page.py``,
docs/decisions/0018): it answers every read the algorithm may make, and the
algorithm reads those answers through a ``ReplayReader``; whatever it was
not written for goes to the server as before. The one statement hides its
tsqueries from the planner, so it runs with a generic plan, made once per
connection; the algorithm's own statements show theirs and keep custom plans
(docs/decisions/0022). Statements run in read committed without an explicit
transaction: BEGIN and COMMIT would add two round trips. An import swaps the
whole catalog in one commit, so each statement sees the old catalog or the new
one. The snapshot (vocabulary,
genres, facets) is read in one repeatable-read, read-only transaction, as
its parts must agree with each other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any, TypeVar

import anyio.to_thread
import asyncpg

from reelsearch.config import Settings
from reelsearch.db.postgres import PostgresPool
from reelsearch.errors import ConnectionLost
from reelsearch.search.deadline import Deadline
from reelsearch.search.engine import Hit, SearchResult
from reelsearch.search.hit_rows import open_postgres_hit_rows
from reelsearch.search.matching import TextMatch
from reelsearch.search.postgres_page import PageStatement
from reelsearch.search.postgres_prepared import PagePreparer, PageSql
from reelsearch.search.postgres_reads import Cut
from reelsearch.search.postgres_replay import Answers, ReplayReader
from reelsearch.search.query import SearchQuery
from reelsearch.search.readers import PostgresReader, Reader, Row
from reelsearch.search.snapshot import CatalogSnapshot, read_catalog_facts, read_version
from reelsearch.search.sql import POSTGRESQL
from reelsearch.search.stored_postings import open_postgres_postings
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
        self.page_statement = PageStatement(self.tiered.pages)
        self.preparer = PagePreparer(self.tiered, self.page_statement, snapshot)
        self._refresh_lock = asyncio.Lock()
        # A snapshot with title postings, and the same without them (made once).
        self._without_postings = (snapshot, snapshot.without_postings())

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
        searched, in_memory = self._searched(snapshot, query, count=True)

        async def read(db: PooledReader) -> SearchResult:
            replay = await self.read_page(db, snapshot, query, count=True)
            replay.before_miss = self._custom_plans(db)
            return await self.tiered.search(replay, searched, query)

        plans = None if in_memory else _has_page(query)
        return await self._read(read, deadline or self.deadline(), plans)

    async def autocomplete(self, query: SearchQuery, deadline: Deadline | None = None) -> list[Hit]:
        snapshot = self.snapshot
        searched, in_memory = self._searched(snapshot, query, count=False)

        async def read(db: PooledReader) -> list[Hit]:
            replay = await self.read_page(db, snapshot, query, count=False)
            replay.before_miss = self._custom_plans(db)
            return await self.tiered.autocomplete(replay, searched, query)

        plans = None if in_memory else _has_page(query)
        return await self._read(read, deadline or self.deadline(), plans)

    def _searched(
        self, snapshot: CatalogSnapshot, query: SearchQuery, *, count: bool
    ) -> tuple[CatalogSnapshot, bool]:
        """The snapshot the algorithm searches ``query`` on (``snapshot``, the engine's,
        or the same without postings), and whether the title
        postings answer its match sets in memory (``PagePreparer._from_postings``).

        When they do, nothing is sent first, and the page's rows are one read by
        rank (any plan mode: it holds no tsquery). When they do not, the one
        statement answers the reads, and the algorithm must make those very
        reads: it searches the snapshot without the postings.
        """
        if snapshot.postings is None or not _has_page(query):
            return snapshot, False  # no one statement: every read is the algorithm's own
        prepared = self.preparer.prepared(snapshot, query, count=count)
        if prepared is None or prepared.statement is None:
            return snapshot, prepared is not None
        plain = self._without_postings
        if plain[0] is not snapshot:
            plain = self._without_postings = (snapshot, snapshot.without_postings())
        return plain[1], False

    def _custom_plans(self, db: PooledReader) -> Callable[[], Awaitable[None]]:
        """What switches ``db``'s connection to custom plans, before the algorithm's own
        statements: they show the planner their tsquery, and a generic plan for those
        can walk the whole catalog (0005)."""

        async def switch() -> None:
            await self.pool.use_plans((await db.reader()).conn, generic=False)

        return switch

    async def read_page(
        self, db: Reader, snapshot: CatalogSnapshot, query: SearchQuery, *, count: bool
    ) -> ReplayReader:
        """A reader holding the answers to a relevance page's reads, found in one statement.

        What to send is worked out once per query (``PagePreparer``, kept in an
        LRU); other searches (no words, sorted by a column) get an empty
        reader: every read goes to the server.
        """
        replay = ReplayReader(db)
        if not query.words or query.sort != "relevance":
            return replay
        prepared = self.preparer.prepared(snapshot, query, count=count)
        if prepared is None or prepared.statement is None:
            return replay
        match, filters, need = prepared.match, prepared.filters, prepared.need
        share = prepared.share

        async def page(match: TextMatch, statement: PageSql, cuts: Sequence[Cut] = ()) -> Answers:
            replay.round_trips += 1
            found = await db.rows(statement.sql, statement.params)
            return self.page_statement.answers(
                match,
                filters,
                need,
                statement.limit,
                found,
                broad=statement.broad,
                cuts=cuts,
                beyond_cap=statement.beyond_cap,
                typos_beyond_cap=statement.typos_beyond_cap,
            )

        if len(query.words) > 1:
            tried = prepared.tried
            floor: list[TextMatch] = []

            async def more(sql: str, params: Sequence[Any]) -> Answers | None:
                if not (params and sql.startswith(PageStatement.PROBE_START)):
                    return None
                if not floor:
                    floor.append(preparer.cut(snapshot, query, plan, preparer.floor_words(query)))
                for cut in (*tried, *floor):
                    if cut.plain == params[0]:
                        replay.more = None  # the algorithm falls back once
                        statement = preparer.page_sql(snapshot, cut, filters, need, share, count)
                        return await page(cut, statement)
                return None

            plan, preparer = match.plan, self.preparer
            replay.more = more
        replay.answers = await page(match, prepared.statement, prepared.cuts)
        return replay

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
        # A statement without parameters is planned once either way: any connection.
        return await self._read(read_version, generic_plans=None)

    async def _read(
        self,
        read: Callable[[PooledReader], Awaitable[T]],
        deadline: Deadline | None = None,
        generic_plans: bool | None = False,
    ) -> T:
        """Run ``read`` on a pooled connection; once more on a fresh one if that one was dead.

        Without pre-ping, a server restart is found by the first read on a
        broken connection; the pool then replaces every connection opened
        before it, and a search only reads, so it can safely run twice. If the
        server is still down, the second attempt fails too: a 503.
        ``generic_plans``: the connection's plan mode (``PostgresPool.connection``).
        """
        try:
            return await self._read_once(read, deadline, generic_plans)
        except ConnectionLost as exc:
            logger.info("lost a pooled connection (%s); reading again on a fresh one", exc)
            return await self._read_once(read, deadline, generic_plans)

    async def _read_once(
        self,
        read: Callable[[PooledReader], Awaitable[T]],
        deadline: Deadline | None,
        generic_plans: bool | None,
    ) -> T:
        """Run ``read`` on a pooled connection, checked out at its first statement; once
        more if an import made its plans stale."""
        async with AsyncExitStack() as stack:
            db = PooledReader(self.pool, stack, deadline, generic_plans)
            try:
                return await read(db)
            except (*_STALE_PLAN_ERRORS, asyncpg.InternalServerError) as exc:
                # XX000 "could not open relation with OID n": a statement that
                # started on the old tables as the swap committed.
                if isinstance(exc, asyncpg.InternalServerError) and "relation" not in str(exc):
                    raise
                logger.info("catalog tables were swapped by an import; preparing again")
                return await read(db)


class PooledReader:
    """A ``PostgresReader`` on a pooled connection checked out at the first statement
    and returned when the search ends (``stack`` closes): a search the title postings
    answer holds a connection only for its page's rows, not while it ranks in Python
    (0037). The wait for the connection is marked on ``deadline`` (``queue``/``resume``):
    the HTTP layer's disconnect watch counts only the search's own time.
    ``generic_plans``: the connection's plan mode (``PostgresPool.connection``)."""

    __slots__ = ("_deadline", "_generic_plans", "_pool", "_reader", "_stack")

    def __init__(
        self,
        pool: PostgresPool,
        stack: AsyncExitStack,
        deadline: Deadline | None,
        generic_plans: bool | None,
    ) -> None:
        self._pool = pool
        self._stack = stack
        self._deadline = deadline
        self._generic_plans = generic_plans
        self._reader: PostgresReader | None = None

    @property
    def seconds(self) -> float:
        return 0.0 if self._reader is None else self._reader.seconds

    async def reader(self) -> PostgresReader:
        """The reader on the checked-out connection, checking it out first if need be."""
        reader = self._reader
        if reader is None:
            deadline = self._deadline
            if deadline is not None:
                deadline.queue()
            checkout = self._pool.connection(generic_plans=self._generic_plans)
            conn = await self._stack.enter_async_context(checkout)
            if deadline is not None:
                deadline.resume()
            reader = self._reader = PostgresReader(conn, deadline)
        return reader

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await (self._reader or await self.reader()).rows(sql, params)

    async def row(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return await (self._reader or await self.reader()).row(sql, params)


def _has_page(query: SearchQuery) -> bool:
    """Whether the search starts with the one statement of a relevance page
    (``read_page``): the statement that runs with generic plans (0022)."""
    return bool(query.words) and query.sort == "relevance"


async def _load_snapshot(
    pool: PostgresPool, previous: CatalogSnapshot | None = None
) -> CatalogSnapshot:
    """The catalog's snapshot; after writes only, ``previous``'s index and moved facets;
    with the title postings the import stored, if the catalog holds at most
    ``title_postings_max_movies`` titles (copied once per host, 0037), and then every
    movie's hit row (0043): a page the postings answer reads no row from the server."""
    settings = pool.settings
    async with (
        pool.connection() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        reader = PostgresReader(conn)
        facts = await read_catalog_facts(
            reader, POSTGRESQL, PostgresWordCache(settings.word_index_cache), previous
        )
        # Building the typo index takes seconds for a large catalog: not on the event loop.
        snapshot = await anyio.to_thread.run_sync(CatalogSnapshot.build, facts)
        if facts.movie_count > settings.title_postings_max_movies:
            return snapshot
        # In the same transaction as the facts: the delta is of the same writes.
        found = await open_postgres_postings(
            reader,
            settings.word_index_cache,
            words_index=facts.stored_index,
            vocabulary=snapshot.vocabulary,
            overlay=facts.overlay,
            previous=previous.stored_postings_pair() if previous is not None else None,
        )
        if found is None:
            return snapshot
        # Without the postings every page comes with its rows (the one statement).
        rows = await open_postgres_hit_rows(
            reader,
            settings.word_index_cache,
            previous.hit_rows if previous is not None else None,
        )
    return replace(snapshot.with_postings(*found), hit_rows=rows)
