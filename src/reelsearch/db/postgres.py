"""The PostgreSQL connection pool of one worker process.

SQLAlchemy's async engine owns the pool (``AsyncAdaptedQueuePool``: size,
overflow, checkout timeout, recycle, pre-ping, LIFO); the search code then
talks to the raw asyncpg connection, because SQLAlchemy's statement layer
costs more than the indexed queries themselves. A connection is checked out
with ``engine.raw_connection()`` behind a FIFO gate of size + overflow
slots, so that waiters are served in turn and give up after
``db_pool_timeout`` (docs/decisions/0004-postgres-pool.md). A healthy
connection a request gives back stays checked out, on a stack the next
request takes from, while the pool's own checkout rules (recycle age,
invalidation after a loss, pre-ping, overflow) would hand it out unchanged:
two greenlet hops and an ``asyncio.wait_for`` less per search
(docs/decisions/0024).

Checkouts that find every slot taken are counted and timed, so the metrics
layer can read waits and wait time beside SQLAlchemy's own counts
(``PoolStats``). A failed checkout becomes ``DatabaseUnavailable``, a
connection lost under a read ``ConnectionLost``: the HTTP layer answers 503
with Retry-After instead of hanging or failing with a 500. Other errors (a
bad query, misuse of a connection) stay what they are: real bugs.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import sqlalchemy.exc
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from reelsearch.config import Settings
from reelsearch.db.timing import StatementTimes
from reelsearch.db.transactions import TransactionStats
from reelsearch.errors import ConnectionLost, DatabaseUnavailable

# The two plan cache modes a connection switches between (docs/decisions/0022). Every
# connection starts in the first; the search's one statement runs in the second.
CUSTOM_PLANS = "force_custom_plan"
GENERIC_PLANS = "force_generic_plan"

# Errors that mean "the server or the connection is gone", not "the query is wrong",
# as they come out of a checkout: connecting, or pre-ping when it is on. SQLAlchemy's
# asyncpg adapter raises the driver's errors as its emulated DBAPI ones.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    sqlalchemy.exc.EmulatedDBAPIException,
    sqlalchemy.exc.DBAPIError,
    sqlalchemy.exc.TimeoutError,
)

# The same, as raw asyncpg raises them during a read. A plain InterfaceError is
# not here: it also means misuse ("another operation is in progress"), a bug that
# must surface as one; it counts only if the connection is closed.
_SERVER_GONE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    # A server shutting down sends FATAL to idle connections too. asyncpg, not
    # expecting a message then, puts the protocol in an error state, and the next
    # statement fails with this before the closed socket is noticed (about 4 times
    # in 10 when a backend is terminated between two statements of a read).
    asyncpg.InternalClientError,
)


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A reading of the pool for metrics: sizes now, and waits since start."""

    size: int  # the configured number of kept connections
    in_use: int  # checked out right now
    idle: int  # open and waiting in the pool
    overflow: int  # open beyond ``size`` (negative: fewer than size opened so far)
    checkouts: int
    waits: int  # checkouts that had to wait for a connection
    wait_seconds: float  # total time spent waiting
    failures: int  # checkouts that failed (timeout, server down) and connections lost


class PostgresPool:
    """Checks out asyncpg connections from SQLAlchemy's pool, one per request."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: AsyncEngine = create_async_engine(
            settings.asyncpg_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            pool_recycle=settings.db_pool_recycle,
            pool_pre_ping=settings.db_pool_pre_ping,
            pool_use_lifo=settings.db_pool_lifo,
            # Raw asyncpg reads are autocommit anyway, and blocks open their own
            # transactions (conn.transaction()). What this changes is SQLAlchemy's
            # side: a pre-ping is then one round trip, not BEGIN/SELECT/ROLLBACK.
            isolation_level="AUTOCOMMIT",
            connect_args={
                "timeout": settings.db_pool_timeout,  # connecting counts as waiting
                "server_settings": {
                    "application_name": "reelsearch",
                    # Searches are short indexed reads: JIT compilation only adds latency.
                    "jit": "off",
                    # Plan each statement for its own tsquery: how many titles a
                    # tsquery matches decides between the GIN index and walking
                    # the rank index, and a cached generic plan (after 5 runs)
                    # chose a full scan for "any title has these words" that took
                    # 0.2-4.9 s instead of 0.3 ms at 1 M titles (bench/RESULTS.md).
                    # Only the search's one statement, whose plan no parameter
                    # changes, asks for generic plans (``connection(generic_plans=)``).
                    "plan_cache_mode": CUSTOM_PLANS,
                },
            },
        )
        # One slot per connection the pool may open. asyncio.Queue inside the pool
        # lets a task that returns a connection and checks out again overtake the
        # waiters; the semaphore hands a freed slot to the oldest waiter instead.
        self._gate = asyncio.Semaphore(settings.db_pool_size + settings.db_max_overflow)
        # The connections whose session runs generic plans now; any other runs the
        # startup default, custom plans. Weak: a discarded connection drops out.
        self._generic: weakref.WeakSet[asyncpg.Connection] = weakref.WeakSet()
        # Healthy connections returned by requests and kept checked out for the next
        # ones (``_keep``), most recent last.
        self._kept: list[tuple[PoolProxiedConnection, asyncpg.Connection]] = []
        # Pre-ping pings at the pool's checkout, and a FIFO pool spreads the requests
        # over its connections: either way every checkout must go through the pool.
        self._keeps = settings.db_pool_lifo and not settings.db_pool_pre_ping
        self._checkouts = 0
        self._waits = 0
        self._wait_seconds = 0.0
        self._failures = 0
        # For the metrics: every statement's time by shape (asyncpg's query logger,
        # added to each connection as it opens), and the outcome of the transactions
        # writers run through run_transaction(stats=pool.transactions).
        self.statement_times = StatementTimes()
        self.transactions = TransactionStats()
        if settings.metrics_enabled:  # off: asyncpg logs no query (no per-statement cost)
            event.listen(self.engine.sync_engine, "connect", self._time_statements)

    def _time_statements(self, dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(self.statement_times.record_logged)

    @asynccontextmanager
    async def connection(
        self, *, generic_plans: bool | None = False
    ) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection, returned to the pool however the block ends.

        Its statements are planned for their parameters (custom plans, the
        default), or once per connection and statement (``generic_plans=True``:
        only for statements whose plan no parameter changes); ``None`` takes the
        connection as it comes, for statements without parameters. Switching
        costs a round trip (``SET``), staying none.

        The return runs to completion even if the task is cancelled meanwhile;
        a block that was cancelled or left a transaction open gets the
        connection reset first. A failed checkout is ``DatabaseUnavailable``;
        a connection lost under the block is ``ConnectionLost``, and it and
        every other connection opened before it are replaced (a restart breaks
        them all). The block's other errors pass unchanged.
        """
        gate = self._gate
        if gate.locked():
            await self._wait_for_slot()
        else:
            await gate.acquire()  # a free slot: returns at once
        try:
            kept = await self._take_kept() if self._kept else None
            if kept is not None:
                raw, driver = kept
            else:
                try:
                    raw = await self.engine.raw_connection()
                except _CONNECTION_ERRORS as exc:
                    raise self._unavailable(exc) from exc
                driver = raw.driver_connection
            self._checkouts += 1
            must_reset = False
            lost: BaseException | None = None
            try:
                if generic_plans is not None and generic_plans != (driver in self._generic):
                    await self.use_plans(driver, generic=generic_plans)
                yield driver
            except asyncio.CancelledError:
                must_reset = True
                raise
            except Exception as exc:
                if not (driver.is_closed() or isinstance(exc, _SERVER_GONE_ERRORS)):
                    raise
                lost = exc
                raise self._unavailable(exc, ConnectionLost) from exc
            finally:
                if must_reset or lost is not None or not self._keep(raw, driver):
                    await _run_to_completion(self._give_back(raw, driver, must_reset, lost))
        finally:
            gate.release()

    async def use_plans(self, driver: asyncpg.Connection, *, generic: bool) -> None:
        """Switch this checked-out connection to generic or custom plans, if it isn't.

        The connection counts as custom while the ``SET`` is under way: if it is
        cut short, the return resets the session (``RESET ALL``), which is custom.
        """
        if generic == (driver in self._generic):
            return
        self._generic.discard(driver)
        await driver.execute(f"SET plan_cache_mode = {GENERIC_PLANS if generic else CUSTOM_PLANS}")
        if generic:
            self._generic.add(driver)

    def _keep(self, raw: PoolProxiedConnection, driver: asyncpg.Connection) -> bool:
        """Keep a healthy returned connection for the next checkout; False if it must go
        back to SQLAlchemy's pool (``_give_back``).

        SQLAlchemy's checkout and return each cost a greenlet hop, and with every
        connection open (overflow 0 after the first ``size`` checkouts) a checkout
        awaits ``asyncio.wait_for`` on its queue even when a connection is idle:
        about 30 µs of CPU per search (docs/decisions/0024). A connection outside
        a transaction, from a LIFO pool without pre-ping (which must ping at
        checkout) and with no overflow open (the pool's queue must fill first, so
        an overflow connection is closed on return) stays checked out, on a
        stack the next checkout takes from (LIFO, as the pool).
        """
        if driver.is_closed() or driver.is_in_transaction() or not self._keeps:
            return False
        pool: Any = self.engine.pool
        if pool.overflow() > 0:
            return False
        self._kept.append((raw, driver))
        return True

    async def _take_kept(self) -> tuple[PoolProxiedConnection, asyncpg.Connection] | None:
        """The last kept connection, if the pool would hand it out as it is.

        The pool's own checkout rules: older than ``db_pool_recycle``, or opened
        before a connection loss invalidated the pool (``_give_back``), a
        connection is replaced. Such a one goes back through the pool, which
        replaces it at its next checkout; so do the other kept ones, as they
        are likely stale too.
        """
        raw, driver = self._kept.pop()
        record: Any = raw._connection_record
        pool: Any = self.engine.pool
        started = record.starttime
        if (
            driver.is_closed()
            or (pool._recycle > -1 and time.time() - started > pool._recycle)
            or pool._invalidate_time > started
            or record._soft_invalidate_time > started
        ):
            stale = [raw, *(kept for kept, _ in self._kept)]
            self._kept.clear()
            await _run_to_completion(self._return_all(stale))
            return None
        return raw, driver

    async def _wait_for_slot(self) -> None:
        """Wait (counted, timed, bounded by db_pool_timeout) for a free slot of the gate."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.db_pool_timeout):
                await self._gate.acquire()
        except TimeoutError:
            self._failures += 1
            raise DatabaseUnavailable(
                "catalog database unavailable: no free connection in the pool in time"
            ) from None
        finally:
            self._waits += 1
            self._wait_seconds += time.perf_counter() - started

    async def _give_back(
        self,
        raw: PoolProxiedConnection,
        driver: asyncpg.Connection,
        must_reset: bool,
        lost: BaseException | None,
    ) -> None:
        """Return a connection to the pool fit for the next request, or discard it.

        A cancelled statement may still run on the server, and a transaction
        may be open (a cancelled BEGIN can have run; anyio cancels the rollback
        too): asyncpg's ``reset`` waits for the cancel request, rolls back and
        clears its own transaction bookkeeping. A connection that can't be
        reset or is closed is discarded. A lost one also marks every connection
        opened before it for replacement on its next checkout: what SQLAlchemy
        Core does on a disconnect, which the raw driver path bypasses.
        """
        if lost is not None:
            await greenlet_spawn(self.engine.pool._invalidate, raw, lost)
            return
        if not driver.is_closed() and (must_reset or driver.is_in_transaction()):
            self._generic.discard(driver)  # RESET ALL: back to the startup default
            try:
                await driver.reset(timeout=self.settings.db_pool_timeout)
            except Exception:
                driver.terminate()
        if driver.is_closed():
            await greenlet_spawn(raw.invalidate)
        else:
            await greenlet_spawn(raw.close)

    def _unavailable(
        self, exc: BaseException, error: type[DatabaseUnavailable] = DatabaseUnavailable
    ) -> DatabaseUnavailable:
        self._failures += 1
        return error(f"catalog database unavailable: {_describe(exc)}")

    async def _return_all(self, connections: list[PoolProxiedConnection]) -> None:
        """Give these kept connections back to SQLAlchemy's pool."""
        for connection in connections:
            await greenlet_spawn(connection.close)

    def stats(self) -> PoolStats:
        pool: Any = self.engine.pool
        kept = len(self._kept)  # checked out of SQLAlchemy's pool, idle in this one
        return PoolStats(
            size=pool.size(),
            in_use=pool.checkedout() - kept,
            idle=pool.checkedin() + kept,
            overflow=pool.overflow(),
            checkouts=self._checkouts,
            waits=self._waits,
            wait_seconds=self._wait_seconds,
            failures=self._failures,
        )

    async def close(self) -> None:
        kept = [raw for raw, _ in self._kept]
        self._kept.clear()
        await self._return_all(kept)  # dispose closes the connections checked in
        await self.engine.dispose()


async def _run_to_completion(cleanup: Coroutine[Any, Any, None]) -> None:
    """Await ``cleanup`` to its end even if this task is cancelled meanwhile (again).

    anyio cancels at every await until the task exits; the connection must not
    go back to the pool half-cleaned. The cancellation is re-raised afterwards.
    """
    task = asyncio.ensure_future(cleanup)
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as exc:
            cancelled = exc
    task.result()
    if cancelled is not None:
        raise cancelled


def _describe(exc: BaseException) -> str:
    """A short, safe description of a connection failure (no credentials, no trace)."""
    if isinstance(exc, sqlalchemy.exc.TimeoutError):
        return "no free connection in the pool in time"
    # SQLAlchemy's adapter raises its own error from the driver's; the innermost one says
    # what happened (CannotConnectNowError while the server starts, ConnectionRefusedError
    # while down).
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return type(exc).__name__
