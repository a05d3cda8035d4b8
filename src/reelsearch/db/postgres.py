"""The PostgreSQL connection pool of one worker process.

SQLAlchemy's async engine owns the pool (``AsyncAdaptedQueuePool``: size,
overflow, checkout timeout, recycle, pre-ping, LIFO, invalidation of
connections a server restart broke); the search code then talks to the
raw asyncpg connection, because SQLAlchemy's statement layer costs more
than the indexed queries themselves (docs/decisions/0004-postgres-pool.md).

Checkouts that find the pool exhausted are counted and timed, so the
metrics layer can read waits and wait time beside SQLAlchemy's own counts
(``PoolStats``). Any failure to reach the server becomes
``DatabaseUnavailable``: the HTTP layer answers 503 with Retry-After instead
of hanging or failing with a 500. Other errors (a bad query, misuse of a
connection) stay what they are: real bugs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import sqlalchemy.exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from reelsearch.config import Settings
from reelsearch.errors import DatabaseUnavailable

# Errors that mean "the server or the connection is gone", not "the query is wrong",
# as they come out of a checkout (connect, pre-ping: SQLAlchemy wraps driver errors).
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
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
    failures: int  # checkouts that failed (timeout or server down)


class PostgresPool:
    """Checks out asyncpg connections from SQLAlchemy's pool, one per request."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: AsyncEngine = create_async_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            pool_recycle=settings.db_pool_recycle,
            pool_pre_ping=settings.db_pool_pre_ping,
            pool_use_lifo=settings.db_pool_lifo,
            connect_args={
                "timeout": settings.db_pool_timeout,  # connecting counts as waiting
                "server_settings": {
                    "application_name": "reelsearch",
                    # Searches are short indexed reads: JIT compilation only adds latency.
                    "jit": "off",
                },
            },
        )
        self._checkouts = 0
        self._waits = 0
        self._wait_seconds = 0.0
        self._failures = 0

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection, returned to the pool however the block ends.

        SQLAlchemy's ``async with`` returns it even on cancellation; a block
        that was cancelled or left a transaction open gets it reset first, and
        a lost one is discarded. Only a failed checkout or a lost connection
        becomes ``DatabaseUnavailable``; the block's other errors pass unchanged.
        """
        # Nothing idle and no room to open another: this checkout waits for a return.
        # (Timing every checkout instead would count pre-ping round trips as waits.)
        pool: Any = self.engine.pool
        must_wait = pool.checkedin() == 0 and pool.overflow() >= self.settings.db_max_overflow
        started = time.perf_counter()
        async with AsyncExitStack() as stack:
            try:
                conn = await stack.enter_async_context(self.engine.connect())
                waited = time.perf_counter() - started
                raw = await conn.get_raw_connection()
            except _CONNECTION_ERRORS as exc:
                raise self._unavailable(exc) from exc
            self._checkouts += 1
            if must_wait:
                self._waits += 1
                self._wait_seconds += waited
            driver: asyncpg.Connection = raw.driver_connection
            cancelled = False
            try:
                yield driver
            except asyncio.CancelledError:
                cancelled = True
                raise
            except Exception as exc:
                if not (driver.is_closed() or isinstance(exc, _SERVER_GONE_ERRORS)):
                    raise
                # The server went away mid-query: drop this connection (and,
                # through pre-ping, find the other broken ones on checkout).
                await conn.invalidate()
                raise self._unavailable(exc) from exc
            finally:
                if not driver.is_closed() and (cancelled or driver.is_in_transaction()):
                    await _run_to_completion(self._settle(conn, driver))

    async def _settle(self, conn: AsyncConnection, driver: asyncpg.Connection) -> None:
        """Make a connection fit for the next request after a cancelled or sloppy block.

        A cancelled statement may still run on the server, and a transaction
        may be open (a cancelled BEGIN can have run; anyio cancels the
        rollback too): SQLAlchemy only rolls back what it began itself. asyncpg's
        ``reset`` waits for the cancel request, rolls back and clears its own
        transaction bookkeeping; a connection that can't be reset is closed.
        """
        try:
            await driver.reset(timeout=self.settings.db_pool_timeout)
        except Exception:
            driver.terminate()
            await conn.invalidate()

    def _unavailable(self, exc: BaseException) -> DatabaseUnavailable:
        self._failures += 1
        return DatabaseUnavailable(f"catalog database unavailable: {_describe(exc)}")

    def stats(self) -> PoolStats:
        pool: Any = self.engine.pool
        in_use = pool.checkedout()
        return PoolStats(
            size=pool.size(),
            in_use=in_use,
            idle=pool.checkedin(),
            overflow=pool.overflow(),
            checkouts=self._checkouts,
            waits=self._waits,
            wait_seconds=self._wait_seconds,
            failures=self._failures,
        )

    async def close(self) -> None:
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
    # SQLAlchemy wraps the driver's error twice; the innermost one says what happened
    # (CannotConnectNowError while the server starts, ConnectionRefusedError while down).
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return type(exc).__name__
