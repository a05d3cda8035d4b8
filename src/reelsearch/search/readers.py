"""Readers run a search's statements on one connection, held to its deadline.

The algorithm writes SQL once, with ``?`` placeholders, and awaits a
``Reader``: ``SqliteReader`` runs it on a sqlite3 connection (on the event
loop, moving a slow statement to a thread), ``PostgresReader`` on an asyncpg
connection. Both stop a statement at the search's ``Deadline``.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import anyio
import anyio.to_thread

from reelsearch.search.deadline import Deadline

if TYPE_CHECKING:
    import asyncpg

    from reelsearch.db.timing import StatementTimes

T = TypeVar("T")
Row = Sequence[Any]
# SQLite calls the progress handler every this many virtual machine steps
# (a fraction of a millisecond): every 1,000 cost 30% more engine time per
# search on the sample (bench/engine_time.py), every 20,000 is within noise.
PROGRESS_STEPS = 20_000
# What a statement stopped by the progress handler returns, in place of rows.
_INTERRUPTED = object()
# sqlite3's own execute, past a timing connection's (db/timing.py): a reader that
# records its statements' times itself already holds their clock reads.
_execute_untimed = sqlite3.Connection.execute


class Reader(Protocol):
    """Runs read statements written with ``?`` placeholders.

    ``seconds`` adds up the time its statements took (the engine's "database"
    stage, ``search/timing.py``); it stays 0.0 until a statement has run (a
    page's rows then come from the snapshot alone, ``pages.py``).
    """

    @property
    def seconds(self) -> float: ...

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def row(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...


class SqliteReader:
    """A sqlite3 connection behind the async Reader interface, held to a deadline.

    Without a deadline (snapshot loads, blocking scripts) it never suspends.
    With one, SQLite's progress handler interrupts a statement that runs past
    it. A statement runs on the calling thread (the event loop) while it
    takes under ``inline_seconds``; one that takes longer is interrupted
    and run again in a thread of ``threads``, as is every later statement of
    the same search, so one slow search costs the event loop at most a slice
    per statement, never its deadline. ``inline_seconds=0`` sends every
    statement to a thread (``search_in_threads``).

    With ``times`` (the pool's ``StatementTimes``, metrics on) the reader
    records each statement's time by shape itself, from the two clock reads
    it makes for ``seconds`` anyway, and runs it on sqlite3's own execute:
    the timing connection's Python execute, cursor subclass and fetch cost
    more per statement than the record (docs/decisions/0028).
    """

    __slots__ = (
        "conn", "deadline", "seconds", "_in_threads", "_inline_seconds", "_stop_at", "_threads",
        "_times", "interrupted",
    )  # fmt: skip

    def __init__(
        self,
        conn: sqlite3.Connection,
        deadline: Deadline | None = None,
        *,
        threads: anyio.CapacityLimiter | None = None,
        inline_seconds: float = math.inf,
        times: StatementTimes | None = None,
    ) -> None:
        self.conn = conn
        self.deadline = deadline
        self._times = times
        self._threads = threads
        self._inline_seconds = inline_seconds
        self._in_threads = threads is not None and inline_seconds <= 0
        self._stop_at = math.inf
        self.seconds = 0.0
        # A statement was stopped mid-way: sqlite3 (3.11) then keeps its cached
        # statement marked in use for good, and prepares that text afresh on every
        # later execute on this connection (12 -> 28 µs for the probe). The engine
        # hands such a connection back to be replaced (ReadPool.end).
        self.interrupted = False

    def watch(self) -> None:
        """Let the deadline interrupt this connection's statements (until ``unwatch``)."""
        self.conn.set_progress_handler(self._is_past_stop, PROGRESS_STEPS)

    def unwatch(self) -> None:
        self.conn.set_progress_handler(None, 0)

    def _is_past_stop(self) -> bool:
        deadline = self.deadline
        return time.monotonic() >= self._stop_at or (deadline is not None and deadline.is_cancelled)

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        if self.deadline is None:
            # Not named `found`: compiled, that name would be typed a list below too,
            # where it may hold _INTERRUPTED (mypyc checks the type on assignment).
            started = time.perf_counter()
            listed = self.conn.execute(sql, params).fetchall()
            self.seconds += time.perf_counter() - started
            return listed
        if not self._in_threads:  # the common case, without a second coroutine per statement
            found = self._inline(sql, params, False)
            if found is not _INTERRUPTED:
                return found  # type: ignore[no-any-return]
        return await self._in_thread(sql, params, False)  # type: ignore[no-any-return]

    async def row(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        if self.deadline is None:  # `one`, not `found`: see rows()
            started = time.perf_counter()
            one: Row | None = self.conn.execute(sql, params).fetchone()
            self.seconds += time.perf_counter() - started
            return one
        if not self._in_threads:
            found = self._inline(sql, params, True)
            if found is not _INTERRUPTED:
                return found  # type: ignore[no-any-return]
        return await self._in_thread(sql, params, True)  # type: ignore[no-any-return]

    def _inline(self, sql: str, params: Sequence[Any], one: bool) -> Any:
        """The statement on the calling thread for up to a slice (to the deadline when it
        has nowhere to move); ``_INTERRUPTED`` when it must go on in a thread."""
        deadline = self.deadline
        assert deadline is not None
        deadline.check()
        stop_at = deadline.expires_at
        if self._threads is not None:  # else nowhere to move it: inline to the deadline
            stop_at = min(time.monotonic() + self._inline_seconds, stop_at)
        found = self._execute(sql, params, one, stop_at)
        if found is not _INTERRUPTED:
            return found
        deadline.check()
        if self._threads is None:
            raise deadline.timed_out()
        self._in_threads = True  # slow: the rest of this search leaves the loop
        return _INTERRUPTED

    async def _in_thread(self, sql: str, params: Sequence[Any], one: bool) -> Any:
        """The statement in a thread of ``threads``, to the deadline."""
        deadline = self.deadline
        assert deadline is not None
        deadline.check()
        found = await anyio.to_thread.run_sync(
            self._execute, sql, params, one, deadline.expires_at, limiter=self._threads
        )
        if found is _INTERRUPTED:
            deadline.check()
            raise deadline.timed_out()
        return found

    def _execute(self, sql: str, params: Sequence[Any], one: bool, stop_at: float) -> Any:
        self._stop_at = stop_at
        times = self._times
        started = time.perf_counter()
        try:
            if times is None:
                cursor = self.conn.execute(sql, params)
            else:
                cursor = _execute_untimed(self.conn, sql, params)
            found = cursor.fetchone() if one else cursor.fetchall()
        except sqlite3.OperationalError as exc:
            if str(exc) != "interrupted":
                raise
            found = _INTERRUPTED
            self.interrupted = True
        finally:
            self._stop_at = math.inf
            elapsed = time.perf_counter() - started
            self.seconds += elapsed
        if times is not None and found is not _INTERRUPTED:  # as the timing connection did
            times.record(sql, elapsed)
        return found


class PostgresReader:
    """An asyncpg connection behind the Reader interface, held to a deadline.

    asyncpg prepares each distinct statement once per connection and reuses
    it, so the engine's few statement shapes are parsed and planned once. A
    statement still running at the deadline is cancelled on the server
    (asyncpg's ``timeout``) and the connection stays usable.
    """

    __slots__ = ("conn", "deadline", "seconds")

    def __init__(self, conn: asyncpg.Connection, deadline: Deadline | None = None) -> None:
        self.conn = conn
        self.deadline = deadline
        self.seconds = 0.0

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await self._run(self.conn.fetch, sql, params)  # type: ignore[no-any-return]

    async def row(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return await self._run(self.conn.fetchrow, sql, params)  # type: ignore[no-any-return]

    async def _run(
        self, fetch: Callable[..., Awaitable[Any]], sql: str, params: Sequence[Any]
    ) -> Any:
        deadline = self.deadline
        started = time.perf_counter()
        if deadline is None:  # timed too: ``seconds`` counts every statement (Reader)
            try:
                return await fetch(numbered(sql), *params)
            finally:
                self.seconds += time.perf_counter() - started
        deadline.check()
        try:
            return await fetch(numbered(sql), *params, timeout=deadline.remaining() or 0.001)
        except TimeoutError:
            deadline.check()
            raise deadline.timed_out() from None
        finally:
            self.seconds += time.perf_counter() - started


Statement = tuple[str, tuple[Any, ...]]


class RecordingReader:
    """A Reader that notes every statement with its parameters, then runs it.

    For diagnostics: the EXPLAIN tests and the SQL-floor bench replay exactly
    what the engine sent.
    """

    __slots__ = ("inner", "seen")

    def __init__(self, inner: Reader, seen: list[Statement]) -> None:
        self.inner = inner
        self.seen = seen

    @property
    def seconds(self) -> float:
        return self.inner.seconds

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self.seen.append((sql, tuple(params)))
        return await self.inner.rows(sql, params)

    async def row(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        self.seen.append((sql, tuple(params)))
        return await self.inner.row(sql, params)


@lru_cache(maxsize=4096)
def numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...`` (statements never quote a ``?``)."""
    parts = sql.split("?")
    return "".join(f"{part}${n}" for n, part in enumerate(parts[:-1], start=1)) + parts[-1]


def run_inline(coroutine: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that never suspends (SQLite reads), without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("a read that should never wait suspended")
