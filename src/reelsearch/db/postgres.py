"""The PostgreSQL connection pool of one worker process.

SQLAlchemy's async engine owns the pool (``AsyncAdaptedQueuePool``: size,
overflow, checkout timeout, recycle, pre-ping, LIFO, invalidation of
connections a server restart broke); the search code then talks to the
raw asyncpg connection, because SQLAlchemy's statement layer costs more
than the indexed queries themselves (docs/decisions/0004-postgres-pool.md).

Every checkout is timed, so the metrics layer can read waits and wait
time beside SQLAlchemy's own counts (``PoolStats``). Any failure to reach
the server becomes ``DatabaseUnavailable``: the HTTP layer answers 503 with
Retry-After instead of hanging or failing with a 500.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import sqlalchemy.exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from reelsearch.config import Settings
from reelsearch.errors import DatabaseUnavailable

# Errors that mean "the server or the connection is gone", not "the query is wrong".
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

# A checkout that took longer than this waited for a free connection.
_WAIT_THRESHOLD_SECONDS = 0.001


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

        Cancellation and errors are covered by ``async with``: SQLAlchemy
        returns the connection (resetting it, or discarding it if broken).
        """
        started = time.perf_counter()
        try:
            async with self.engine.connect() as conn:
                waited = time.perf_counter() - started
                self._checkouts += 1
                if waited > _WAIT_THRESHOLD_SECONDS:
                    self._waits += 1
                    self._wait_seconds += waited
                raw = await conn.get_raw_connection()
                driver: asyncpg.Connection = raw.driver_connection
                try:
                    yield driver
                except _CONNECTION_ERRORS:
                    # The server went away mid-query: drop this connection (and,
                    # through pre-ping, find the other broken ones on checkout).
                    await conn.invalidate()
                    raise
        except _CONNECTION_ERRORS as exc:
            self._failures += 1
            raise DatabaseUnavailable(f"catalog database unavailable: {_describe(exc)}") from exc

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


def _describe(exc: BaseException) -> str:
    """A short, safe description of a connection failure (no credentials, no trace)."""
    if isinstance(exc, sqlalchemy.exc.TimeoutError):
        return "no free connection in the pool in time"
    return (
        type(exc.__cause__ or exc).__name__
        if isinstance(exc, sqlalchemy.exc.DBAPIError)
        else (type(exc).__name__)
    )
