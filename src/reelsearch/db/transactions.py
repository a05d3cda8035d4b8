"""PostgreSQL transactions with an isolation level per operation and safe retries.

Every unit of work names the isolation level it needs:

- ``read_committed``: single-statement reads and writes whose statements are
  atomic on their own (a search, ``UPDATE ... SET n = n + 1``);
- ``repeatable_read``: a unit that reads, decides and writes back, or reads
  several statements that must agree with each other (one snapshot for all);
  PostgreSQL then refuses to overwrite a row changed after that snapshot
  (SQLSTATE 40001) instead of losing the other transaction's update;
- ``serializable``: when even rows the unit only read must not change under it.

Two transactions can still lose a race: a serialization failure (40001) or a
deadlock (40P01, when they lock the same rows in opposite orders; writers here
lock rows in a stable order so it should not happen). PostgreSQL has rolled the
loser back entirely, so running the *whole* unit again in a new transaction is
correct, provided the unit is idempotent: it recomputes everything from what
it reads and has no effect outside the database. ``run_transaction`` retries
only such units, with full-jitter exponential backoff, a bounded number of
times; anything else fails at once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import asyncpg

from reelsearch.errors import TransactionConflict

T = TypeVar("T")

Isolation = Literal["read_committed", "repeatable_read", "serializable"]

# ``connect()`` gives a connection for one attempt: a pool checkout, a fresh
# asyncpg.connect(), or the caller's own connection (reuse_connection).
Connect = Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]
Unit = Callable[[asyncpg.Connection], Awaitable[T]]  # runs inside the transaction

# The two SQLSTATEs after which PostgreSQL has rolled the transaction back and
# the same unit may well succeed when run again.
SERIALIZATION_FAILURE = "40001"
DEADLOCK_DETECTED = "40P01"
_RETRYABLE = (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)

# 5 attempts with 10 ms doubling up to 0.5 s wait at most ~0.15 s in total
# (0.075 s on average): long enough for the winner of a race to commit, short
# enough that a background write-back never stalls noticeably.
DEFAULT_ATTEMPTS = 5
DEFAULT_BASE_DELAY = 0.01
DEFAULT_MAX_DELAY = 0.5


@dataclass(slots=True)
class TransactionStats:
    """Counters a metrics exporter can read: commits, conflicts per SQLSTATE, retries."""

    committed: int = 0
    retries: int = 0
    gave_up: int = 0  # units that ended in TransactionConflict
    conflicts: dict[str, int] = field(default_factory=dict)  # SQLSTATE -> count

    @property
    def deadlocks(self) -> int:
        return self.conflicts.get(DEADLOCK_DETECTED, 0)

    @property
    def serialization_failures(self) -> int:
        return self.conflicts.get(SERIALIZATION_FAILURE, 0)


def backoff_delay(attempt: int, base_delay: float, max_delay: float) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): full jitter.

    A uniform draw in ``[0, min(max_delay, base_delay * 2 ** (attempt - 1))]``
    spreads the losers of one race apart, so they do not collide again in step.
    """
    return random.uniform(0.0, min(max_delay, base_delay * 2 ** (attempt - 1)))


async def run_transaction(
    connect: Connect,
    unit: Unit[T],
    *,
    isolation: Isolation = "read_committed",
    readonly: bool = False,
    idempotent: bool,
    attempts: int = DEFAULT_ATTEMPTS,
    base_delay: float = DEFAULT_BASE_DELAY,
    max_delay: float = DEFAULT_MAX_DELAY,
    stats: TransactionStats | None = None,
) -> T:
    """Run ``unit(conn)`` in one transaction and return its result.

    On a serialization failure or deadlock the whole unit runs again in a new
    transaction (on a connection from a new ``connect()``), at most
    ``attempts`` times in all, but only when ``idempotent`` is true. When it
    is not, or the attempts run out, :class:`TransactionConflict` is raised
    from the driver's error. Every other error propagates unchanged at once.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    stats = stats if stats is not None else TransactionStats()
    for attempt in range(1, attempts + 1):
        try:
            async with (
                connect() as conn,
                conn.transaction(isolation=isolation, readonly=readonly),
            ):
                result = await unit(conn)
        except _RETRYABLE as exc:
            sqlstate = str(exc.sqlstate)
            stats.conflicts[sqlstate] = stats.conflicts.get(sqlstate, 0) + 1
            if not idempotent or attempt == attempts:
                stats.gave_up += 1
                raise TransactionConflict(
                    f"{exc} (SQLSTATE {sqlstate}; attempt {attempt} of "
                    f"{attempts if idempotent else 1}"
                    f"{'' if idempotent else ', not retried: the unit is not idempotent'})",
                    sqlstate=sqlstate,
                    attempts=attempt,
                ) from exc
            stats.retries += 1
            await asyncio.sleep(backoff_delay(attempt, base_delay, max_delay))
        else:
            stats.committed += 1
            return result
    raise AssertionError("unreachable: the last attempt returns or raises")


def reuse_connection(conn: asyncpg.Connection) -> Connect:
    """A ``connect`` that hands out ``conn`` itself every time and never closes it."""

    @asynccontextmanager
    async def connect() -> AsyncIterator[asyncpg.Connection]:
        yield conn

    return connect
