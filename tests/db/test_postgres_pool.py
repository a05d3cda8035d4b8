"""The PostgreSQL pool on the real server: connections always come back.

Every test opens its own engine (or pool) on a private catalog database, so
the server's own view (``pg_stat_activity``) counts only our connections:
after errors, cancellations and bursts, none is left checked out, running or
idle in a transaction, and the count never passes size + overflow per pool.
"""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import replace
from typing import Any

import anyio
import asyncpg
import pytest

from reelsearch.catalog.imdb_generate import write_imdb_dataset
from reelsearch.catalog.importers.imdb import import_imdb
from reelsearch.config import Settings
from reelsearch.db.postgres import PoolStats, PostgresPool
from reelsearch.db.transactions import run_transaction
from reelsearch.errors import ConnectionLost, DatabaseUnavailable
from reelsearch.search.engine import SearchResult
from reelsearch.search.postgres import PooledReader, PostgresSearchEngine
from reelsearch.search.query import parse_search

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]

SIZE, OVERFLOW = 2, 1
# No cleanup checked here should take more than a fraction of this on a busy machine.
SETTLE_SECONDS = 10.0
# Server states a returned connection must never be left in.
BUSY_STATES = ("active", "idle in transaction", "idle in transaction (aborted)")

Read = Callable[[PooledReader], Awaitable[Any]]


@pytest.fixture(scope="module")
def catalog(
    postgres_databases: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """A private catalog database (500 generated titles, the real importer), small pools."""
    settings = Settings(
        database_url=postgres_databases("pool"),
        db_pool_size=SIZE,
        db_max_overflow=OVERFLOW,
        db_pool_timeout=5.0,
    )
    dump = write_imdb_dataset(tmp_path_factory.mktemp("pool_dump"), 500, seed=3, akas=False)
    import_imdb(settings, [dump.basics, dump.ratings])
    return settings


@pytest.fixture
async def engine(catalog: Settings) -> AsyncIterator[PostgresSearchEngine]:
    """A search engine of its own (pool of SIZE + OVERFLOW) on the private catalog."""
    opened = await PostgresSearchEngine.open(catalog)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def admin(catalog: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A connection outside the pools, to watch and poke the server."""
    conn = await asyncpg.connect(catalog.postgres_dsn)
    try:
        yield conn
    finally:
        await conn.close()


def _running(sql: str) -> Read:
    """A read for ``engine._read`` (the engine's one seam for reads) that runs ``sql``."""
    return lambda db: db.rows(sql)


def _database(settings: Settings) -> str:
    return settings.database_url.rpartition("/")[2]


async def _server_states(admin: asyncpg.Connection, settings: Settings) -> list[str]:
    """The state of each connection the service holds on the catalog database."""
    rows = await admin.fetch(
        "SELECT state FROM pg_stat_activity WHERE application_name = 'reelsearch' AND datname = $1",
        _database(settings),
    )
    return [row["state"] for row in rows]


async def _settled_states(admin: asyncpg.Connection, settings: Settings) -> list[str]:
    """Server states once no connection of ours is busy (or the last reading at the bound)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        states = await _server_states(admin, settings)
        if not any(state in BUSY_STATES for state in states) or time.monotonic() > deadline:
            return states
        await asyncio.sleep(0.05)


async def _our_pids(admin: asyncpg.Connection, settings: Settings) -> list[int]:
    """Server pids of every connection the service holds on the catalog database."""
    rows = await admin.fetch(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'reelsearch' AND datname = $1",
        _database(settings),
    )
    return [row["pid"] for row in rows]


async def _backend_pids(admin: asyncpg.Connection, settings: Settings, query: str) -> list[int]:
    rows = await admin.fetch(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'reelsearch'"
        " AND datname = $1 AND state = 'active' AND query = $2",
        _database(settings),
        query,
    )
    return [row["pid"] for row in rows]


async def _wait_for_active(
    admin: asyncpg.Connection,
    settings: Settings,
    query: str,
    count: int,
    besides: Collection[int] = (),
) -> list[int]:
    """Pids of ``count`` of our backends running ``query`` (not ``besides``); fails past bound."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        pids = [p for p in await _backend_pids(admin, settings, query) if p not in besides]
        if len(pids) >= count:
            return pids
        await asyncio.sleep(0.02)
    raise AssertionError(f"{count} backends never ran {query!r}")


async def _assert_pool_healthy(engine: PostgresSearchEngine, admin: asyncpg.Connection) -> None:
    """Nothing checked out or busy, at most size + overflow open, and searches work."""
    assert 0 == engine.pool.stats().in_use
    states = await _settled_states(admin, engine.settings)
    assert [] == [state for state in states if state in BUSY_STATES]
    assert len(states) <= SIZE + OVERFLOW
    result = await engine.search(parse_search([("q", "the")]))
    assert result.total > 0
    assert 0 == engine.pool.stats().in_use


async def test_failed_searches_return_their_connections(
    engine: PostgresSearchEngine, admin: asyncpg.Connection
) -> None:
    """Bad SQL, refused requests and killed queries all give their connection back.

    Each failure surfaces as what it is (a syntax error, an InvalidRequest, a
    cancelled statement): none is disguised as the database being unavailable.
    """
    slow_query = "SELECT pg_sleep(30) AS cancel_me"

    async def timed_out(db: PooledReader) -> Any:
        conn = (await db.reader()).conn  # checked out at the first statement
        async with conn.transaction():
            await conn.execute("SET LOCAL statement_timeout = 50")
            return await db.rows("SELECT pg_sleep(5)")

    async def cancel_slow_ones() -> None:
        pids = await _wait_for_active(admin, engine.settings, slow_query, 2)
        # A cancel that lands while the statement is still being parsed or bound (the
        # extended protocol's steps before it runs) is dropped by the server: cancel
        # again until no backend runs it, within the bound.
        deadline = time.monotonic() + SETTLE_SECONDS
        while pids and time.monotonic() < deadline:
            for pid in pids:
                await admin.execute("SELECT pg_cancel_backend($1)", pid)
            await asyncio.sleep(0.05)
            pids = await _backend_pids(admin, engine.settings, slow_query)

    for _ in range(3):
        failures: list[Awaitable[Any]] = []
        for _ in range(5):
            failures.append(engine._read(_running("SELEC title FROM movies")))
            failures.append(engine._read(_running("SELECT no_such_column FROM movies")))
            failures.append(engine.search(parse_search([("q", "the"), ("genres", "Nonesuch")])))
            failures.append(engine._read(timed_out))
        killed = [engine._read(_running(slow_query)) for _ in range(2)]
        outcomes = await asyncio.gather(
            *failures, *killed, cancel_slow_ones(), return_exceptions=True
        )

        kinds = [type(outcome).__name__ for outcome in outcomes[:-1]]
        assert ["PostgresSyntaxError", "UndefinedColumnError", "InvalidRequest",
                "QueryCanceledError"] * 5 + ["QueryCanceledError"] * 2 == kinds  # fmt: skip
        assert None is outcomes[-1]
        await _assert_pool_healthy(engine, admin)
    assert 0 == engine.pool.stats().failures


async def test_lost_connection_is_read_again_on_a_fresh_one(
    engine: PostgresSearchEngine, admin: asyncpg.Connection
) -> None:
    """A backend killed mid-query: the read runs again on a new connection and answers."""
    query = "SELECT 1 AS killed_once FROM pg_sleep(0.3)"
    reads = [asyncio.ensure_future(engine._read(_running(query))) for _ in range(2)]
    killed = await _wait_for_active(admin, engine.settings, query, 2)
    for pid in killed:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
    outcomes = await asyncio.gather(*reads)

    assert [[(1,)], [(1,)]] == [[tuple(row) for row in rows] for rows in outcomes]
    assert 2 == engine.pool.stats().failures  # the two lost connections
    assert set() == set(killed) & set(await _our_pids(admin, engine.settings))
    await _assert_pool_healthy(engine, admin)


async def test_lost_again_on_the_fresh_connection_is_unavailable(
    engine: PostgresSearchEngine, admin: asyncpg.Connection
) -> None:
    """Killed on its first connection and again on the fresh one: DatabaseUnavailable, no more.

    The read runs twice at most; the pool drops both connections and goes on.
    """
    slow_query = "SELECT pg_sleep(30) AS terminate_me"
    reads = [asyncio.ensure_future(engine._read(_running(slow_query))) for _ in range(2)]
    first = await _wait_for_active(admin, engine.settings, slow_query, 2)
    for pid in first:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
    second = await _wait_for_active(admin, engine.settings, slow_query, 2, besides=first)
    for pid in second:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
    outcomes = await asyncio.gather(*reads, return_exceptions=True)

    assert [ConnectionLost, ConnectionLost] == [type(o) for o in outcomes]
    assert all(isinstance(o, DatabaseUnavailable) for o in outcomes)  # a 503
    # The server's goodbye (57P01), or the closed socket if that came first.
    assert re.fullmatch(
        "catalog database unavailable: (AdminShutdownError|ConnectionDoesNotExistError)",
        str(outcomes[0]),
    )
    assert 4 == engine.pool.stats().failures
    await _assert_pool_healthy(engine, admin)


async def test_backends_terminated_while_idle_cost_one_failed_attempt(
    catalog: Settings, admin: asyncpg.Connection
) -> None:
    """Every idle connection killed, as a server restart does: the next searches all answer.

    No pre-ping: the first read finds its connection dead, the pool replaces
    every connection opened before it, and the read runs again on a fresh one.
    The other connections are not tried and failed one by one.
    """
    # Postings off: every search reads the catalog ("the" is answered in memory with them).
    settings = replace(catalog, db_pool_pre_ping=False, title_postings_max_movies=0)
    engine = await PostgresSearchEngine.open(settings)
    try:
        query = parse_search([("q", "the")])
        # Open every connection the pool may keep (and one overflow, closed on return).
        await asyncio.gather(*[engine._read(_running("SELECT pg_sleep(0.1)")) for _ in range(3)])
        old = await _our_pids(admin, catalog)
        assert SIZE == len(old)
        for pid in old:
            await admin.execute("SELECT pg_terminate_backend($1, $2)", pid, 5000)  # until gone

        first = await engine.search(query)
        many = [engine.search(query) for _ in range(2 * (SIZE + OVERFLOW))]
        results = await asyncio.gather(*many)

        assert first.total > 0
        assert all(first.total == result.total for result in results)
        assert 1 == engine.pool.stats().failures
        assert set() == set(old) & set(await _our_pids(admin, catalog))
        await _assert_pool_healthy(engine, admin)
    finally:
        await engine.close()


async def test_backend_killed_between_statements_is_unavailable(
    engine: PostgresSearchEngine, admin: asyncpg.Connection
) -> None:
    """A backend killed while its connection idles between two statements: a 503, never a 500.

    The server's FATAL reaches asyncpg with no statement running; depending on
    timing the next statement fails as an unexpected protocol state
    (InternalClientError), a closed connection, or a dropped one: each must be
    DatabaseUnavailable (this read kills its connection on both attempts), and
    the pool must replace the connections.
    """
    causes: set[str] = set()

    def killed_midway(spins: int) -> Read:
        async def read(db: PooledReader) -> Any:
            await db.rows("SELECT 1")
            await admin.execute(
                "SELECT pg_terminate_backend($1)", (await db.reader()).conn.get_server_pid()
            )
            for _ in range(spins):  # vary where the FATAL lands relative to the next statement
                await asyncio.sleep(0)
            return await db.rows("SELECT 2")

        return read

    for attempt in range(24):
        with pytest.raises(DatabaseUnavailable) as raised:  # killed again when read again
            await engine._read(killed_midway(attempt % 8))
        causes.add(type(raised.value.__cause__).__name__)
    assert causes <= {
        "InternalClientError",
        "InterfaceError",
        "ConnectionDoesNotExistError",
        "AdminShutdownError",
    }
    assert 2 * 24 == engine.pool.stats().failures  # each read ran twice
    await _assert_pool_healthy(engine, admin)


async def test_misuse_of_a_connection_is_a_bug_not_an_outage(
    engine: PostgresSearchEngine, admin: asyncpg.Connection
) -> None:
    """Two statements at once on one connection raise asyncpg's InterfaceError as is.

    It is a programming error: it must reach the logs as a 500, not hide
    behind a 503 "try again later" (and the healthy connection is kept).
    """

    async def overlapping(db: PooledReader) -> Any:
        first = asyncio.ensure_future(db.rows("SELECT pg_sleep(0.1)"))
        await asyncio.sleep(0)  # the first statement is now in progress
        try:
            return await db.rows("SELECT 1")
        finally:
            await first

    with pytest.raises(asyncpg.InterfaceError, match="another operation is in progress"):
        await engine._read(overlapping)
    assert 0 == engine.pool.stats().failures
    await _assert_pool_healthy(engine, admin)


async def test_cancelled_searches_return_their_connections(
    engine: PostgresSearchEngine, admin: asyncpg.Connection
) -> None:
    """Searches cancelled before, while waiting for and during their query leak nothing.

    The cancelled statements stop on the server too: nothing is left running,
    and no connection is left inside a transaction.
    """
    slow_query = "SELECT pg_sleep(30) AS cancelled"
    query = parse_search([("q", "the")])
    for _ in range(3):
        # More slow reads than connections: some hold one, the others wait for one.
        slow = [asyncio.ensure_future(engine._read(_running(slow_query))) for _ in range(6)]
        quick = [asyncio.ensure_future(engine.search(query)) for _ in range(6)]
        at_once = [asyncio.ensure_future(engine.search(query)) for _ in range(6)]
        for task in at_once:  # cancelled before they even ran
            task.cancel()
        await _wait_for_active(admin, engine.settings, slow_query, SIZE + OVERFLOW)
        for task in slow + quick:
            task.cancel()
        outcomes = await asyncio.gather(*slow, *quick, *at_once, return_exceptions=True)

        # A quick search may have finished before its cancel; nothing else may happen.
        assert all(isinstance(o, asyncio.CancelledError | SearchResult) for o in outcomes)
        assert all(isinstance(o, asyncio.CancelledError) for o in outcomes[:6] + outcomes[12:])
        await _assert_pool_healthy(engine, admin)


@pytest.mark.parametrize("pre_ping", [False, True], ids=["no-ping", "pre-ping"])
@pytest.mark.parametrize("delay", [0.0, 0.001, 0.003, 0.01, 0.05, 0.2])
async def test_cancel_scope_inside_a_transaction_leaves_none_open(
    catalog: Settings, admin: asyncpg.Connection, delay: float, pre_ping: bool
) -> None:
    """anyio cancels at every await, the rollback included: the pool still cleans up.

    Without that, the pool would keep the connection "idle in transaction"
    (holding the locks an import's table swap waits for), and the next
    checkout would fail on it (or its pre-ping, if on) as a false 503.
    """
    settings = replace(catalog, db_pool_size=1, db_max_overflow=0, db_pool_pre_ping=pre_ping)
    pool = PostgresPool(settings)
    try:
        for _ in range(3):
            with anyio.move_on_after(delay):
                async with (
                    pool.connection() as conn,
                    conn.transaction(isolation="repeatable_read", readonly=True),
                ):
                    await conn.fetch("SELECT pg_sleep(0.5)")
            assert 0 == pool.stats().in_use
            assert [] == [s for s in await _settled_states(admin, catalog) if s in BUSY_STATES]
            async with pool.connection() as conn:
                assert False is conn.is_in_transaction()
                assert "off" == await conn.fetchval("SHOW jit")  # session settings survive
            assert 0 == pool.stats().failures
    finally:
        await pool.close()


async def test_pre_ping_when_on_is_one_round_trip_and_transactions_still_work(
    catalog: Settings, admin: asyncpg.Connection
) -> None:
    """With pre-ping turned on, a checkout pings with one statement, not BEGIN/SELECT/ROLLBACK.

    The engine's AUTOCOMMIT setting, which makes that so, is SQLAlchemy's
    side only: blocks still open real transactions at the level they ask
    (the snapshot load, run_transaction), and killed idle connections are
    replaced on checkout without failing a read.
    """
    settings = replace(catalog, db_pool_pre_ping=True, db_pool_size=1, db_max_overflow=0)
    engine = await PostgresSearchEngine.open(settings)  # the snapshot: repeatable read
    try:
        pool = engine.pool
        async with pool.connection() as conn:  # pinged: it was opened by the snapshot load
            pid = conn.get_server_pid()
            ping = await admin.fetchval("SELECT query FROM pg_stat_activity WHERE pid = $1", pid)
            assert ";" == ping
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                assert "repeatable read" == await conn.fetchval("SHOW transaction_isolation")
                assert "on" == await conn.fetchval("SHOW transaction_read_only")
            assert False is conn.is_in_transaction()

        async def isolation(conn: asyncpg.Connection) -> str:
            return str(await conn.fetchval("SHOW transaction_isolation"))

        ran = await run_transaction(
            pool.connection, isolation, isolation="serializable", idempotent=True
        )
        assert "serializable" == ran

        await admin.execute("SELECT pg_terminate_backend($1)", pid)
        assert (await engine.search(parse_search([("q", "the")]))).total > 0
        assert 0 == pool.stats().failures  # the ping found it dead, not a read
        assert [] == [s for s in await _settled_states(admin, settings) if s in BUSY_STATES]
    finally:
        await engine.close()


async def test_stats_show_overflow_and_waits(
    engine: PostgresSearchEngine, admin: asyncpg.Connection
) -> None:
    """Ten slow reads on 2 + 1 connections: 3 in use, 1 overflow, the rest wait (timed)."""
    sequential = parse_search([("q", "the")])
    for _ in range(5):
        await engine.search(sequential)
    assert 0 == engine.pool.stats().waits  # a free connection is not a wait

    readings: list[PoolStats] = []
    done = asyncio.Event()

    async def sample() -> None:
        while not done.is_set():
            readings.append(engine.pool.stats())
            await asyncio.sleep(0.005)

    sampler = asyncio.ensure_future(sample())
    await asyncio.gather(*[engine._read(_running("SELECT pg_sleep(0.2)")) for _ in range(10)])
    done.set()
    await sampler
    final = engine.pool.stats()

    assert SIZE + OVERFLOW == max(r.in_use for r in readings)
    assert OVERFLOW == max(r.overflow for r in readings)
    assert 0 == final.in_use
    assert SIZE == final.idle  # the overflow connection was closed on return
    assert final.waits >= 10 - (SIZE + OVERFLOW)
    # Each waiter waited for at least one 0.2 s read to finish.
    assert final.wait_seconds >= 0.15 * final.waits
    assert 0 == final.failures
    await _assert_pool_healthy(engine, admin)


async def test_waiters_are_served_in_turn(catalog: Settings) -> None:
    """With the pool exhausted, a freed connection goes to the oldest waiter.

    A task that returns its connection and checks out again at once must
    queue behind the others (SQLAlchemy's pool alone would let it take the
    connection back, starving the waiters into timeouts).
    """
    pool = PostgresPool(replace(catalog, db_pool_size=1, db_max_overflow=0))
    tasks, rounds = 6, 10
    order: list[int] = []

    async def client(n: int) -> None:
        for _ in range(rounds):
            async with pool.connection() as conn:
                order.append(n)
                await conn.fetchval("SELECT 1")

    try:
        await asyncio.gather(*[client(n) for n in range(tasks)])
    finally:
        await pool.close()

    assert [list(range(tasks))] * rounds == [
        order[i : i + tasks] for i in range(0, len(order), tasks)
    ]
    stats = pool.stats()
    assert (tasks * rounds, tasks * rounds - 1) == (stats.checkouts, stats.waits)


async def test_exhausted_pool_times_out_as_unavailable(catalog: Settings) -> None:
    """With every connection held, a checkout fails after db_pool_timeout: 503, not a hang."""
    settings = replace(
        catalog,
        db_pool_size=1,
        db_max_overflow=0,
        db_pool_timeout=0.3,
        title_postings_max_movies=0,  # every search reads the catalog
    )
    engine = await PostgresSearchEngine.open(settings)
    try:
        async with engine.pool.connection():
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailable, match="no free connection in the pool in time"):
                await engine.search(parse_search([("q", "the")]))
            elapsed = time.monotonic() - started
        assert 0.25 <= elapsed < 3.0
        stats = engine.pool.stats()
        assert (0, 1) == (stats.in_use, stats.failures)
        assert (await engine.search(parse_search([("q", "the")]))).total > 0
    finally:
        await engine.close()


async def test_worker_processes_stay_under_max_connections(
    catalog: Settings, admin: asyncpg.Connection
) -> None:
    """N pools (one per worker process) under load never hold more than N x (size + overflow).

    And the shipped defaults, times the default number of workers, fit in the
    server's max_connections with room for admin and import connections.
    """
    workers = 4
    engines = [await PostgresSearchEngine.open(catalog) for _ in range(workers)]
    try:
        peak = 0
        done = asyncio.Event()

        async def watch() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, len(await _server_states(admin, catalog)))
                await asyncio.sleep(0.01)

        watcher = asyncio.ensure_future(watch())
        slow = _running("SELECT pg_sleep(0.1)")
        await asyncio.gather(*[e._read(slow) for e in engines for _ in range(8)])
        done.set()
        await watcher

        assert workers * SIZE < peak <= workers * (SIZE + OVERFLOW)
        assert all(0 == e.pool.stats().in_use for e in engines)
    finally:
        for opened in engines:
            await opened.close()
    max_connections = int(await admin.fetchval("SHOW max_connections"))
    reserved = int(await admin.fetchval("SHOW superuser_reserved_connections"))
    defaults = Settings()
    per_worker = defaults.db_pool_size + defaults.db_max_overflow
    assert defaults.workers * per_worker < max_connections - reserved


async def test_connections_switch_plan_modes_only_when_asked_another(catalog: Settings) -> None:
    """A checkout gets custom plans unless it asks for generic ones; the connection keeps
    its mode between checkouts, so a switch is one SET and staying none; ``None``
    takes the connection as it is."""
    pool = PostgresPool(replace(catalog, db_pool_size=1, db_max_overflow=0))
    sent: list[str] = []
    try:
        async with pool.connection() as conn:
            conn.add_query_logger(lambda record: sent.append(record.query))
            assert "force_custom_plan" == await conn.fetchval("SHOW plan_cache_mode")
        modes = []
        for generic in (True, True, None, False, False, None):
            async with pool.connection(generic_plans=generic) as conn:
                modes.append(await conn.fetchval("SHOW plan_cache_mode"))
        await asyncio.sleep(0.01)  # asyncpg calls its query loggers soon after, not at once
        assert [
            "force_generic_plan", "force_generic_plan", "force_generic_plan",
            "force_custom_plan", "force_custom_plan", "force_custom_plan",
        ] == modes  # fmt: skip
        assert [
            "SET plan_cache_mode = force_generic_plan",
            "SET plan_cache_mode = force_custom_plan",
        ] == [sql for sql in sent if sql.startswith("SET")]
    finally:
        await pool.close()


async def test_a_cancelled_block_leaves_its_connection_on_custom_plans(catalog: Settings) -> None:
    """A block cancelled on a connection running generic plans gets it reset (RESET ALL):
    the pool then counts it as custom again, and a generic checkout switches it back."""
    pool = PostgresPool(replace(catalog, db_pool_size=1, db_max_overflow=0))
    try:

        async def slow() -> None:
            async with pool.connection(generic_plans=True) as conn:
                await conn.fetch("SELECT pg_sleep(30)")

        task = asyncio.ensure_future(slow())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with pool.connection(generic_plans=None) as conn:
            assert "force_custom_plan" == await conn.fetchval("SHOW plan_cache_mode")
        async with pool.connection(generic_plans=True) as conn:
            assert "force_generic_plan" == await conn.fetchval("SHOW plan_cache_mode")
    finally:
        await pool.close()


async def test_searches_plan_their_one_statement_generically_and_the_rest_custom(
    catalog: Settings,
) -> None:
    """A relevance search runs its one statement with a generic plan; the reads it
    sends besides (facets here) and a sorted search's run custom plans, after one
    switch of the connection; the next relevance search switches it back."""
    # Postings off: every search reads the catalog ("the" is answered in memory with them).
    settings = replace(catalog, db_pool_size=1, db_max_overflow=0, title_postings_max_movies=0)
    engine = await PostgresSearchEngine.open(settings)
    sent: list[str] = []
    try:
        async with engine.pool.connection() as conn:
            conn.add_query_logger(lambda record: sent.append(record.query))
        the = parse_search([("q", "the")])
        await engine.search(the)
        await engine.search(the)
        await asyncio.sleep(0.01)  # asyncpg calls its query loggers soon after, not at once
        assert ["SET plan_cache_mode = force_generic_plan", "WITH", "WITH"] == [
            sql if sql.startswith("SET") else sql.split(" ", 1)[0] for sql in sent
        ]
        sent.clear()
        await engine.search(parse_search([("q", "the"), ("facets", "genres")]))
        await engine.search(parse_search([("q", "the"), ("sort", "-year")]))
        await engine.search(the)
        await asyncio.sleep(0.01)
        # The facet read switches to custom plans; the sorted search checks out custom;
        # the last search switches back.
        assert [
            "SET plan_cache_mode = force_custom_plan",
            "SET plan_cache_mode = force_generic_plan",
        ] == [sql for sql in sent if sql.startswith("SET")]
    finally:
        await engine.close()


async def test_a_returned_connection_is_handed_out_again_without_the_pool(
    catalog: Settings, admin: asyncpg.Connection
) -> None:
    """Checkouts in turn get the same connection back from the kept stack (0024); the
    stats count it idle, and closing the pool closes it on the server too."""
    pool = PostgresPool(catalog)
    try:
        pids = []
        for _ in range(3):
            async with pool.connection() as conn:
                pids.append(await conn.fetchval("SELECT pg_backend_pid()"))
                assert 1 == pool.stats().in_use
        assert 1 == len(set(pids))
        stats = pool.stats()
        assert (0, 1, 3) == (stats.in_use, stats.idle, stats.checkouts)
    finally:
        await pool.close()
    assert [] == await _our_pids_of(admin, catalog, pids[0])


async def test_a_kept_connection_past_its_recycle_age_is_replaced(catalog: Settings) -> None:
    """A kept connection older than db_pool_recycle goes back through the pool, which
    opens a new one: as SQLAlchemy's own checkout would."""
    pool = PostgresPool(replace(catalog, db_pool_recycle=0.2))
    try:
        async with pool.connection() as conn:
            first = await conn.fetchval("SELECT pg_backend_pid()")
        async with pool.connection() as conn:
            assert first == await conn.fetchval("SELECT pg_backend_pid()")
        await asyncio.sleep(0.4)
        async with pool.connection() as conn:
            assert first != await conn.fetchval("SELECT pg_backend_pid()")
        assert 1 == pool.stats().idle
    finally:
        await pool.close()


@pytest.mark.parametrize(
    "changes", [{"db_pool_pre_ping": True}, {"db_pool_lifo": False}], ids=["pre-ping", "fifo"]
)
async def test_with_pre_ping_or_fifo_every_checkout_goes_through_the_pool(
    catalog: Settings, changes: dict[str, bool]
) -> None:
    """Pre-ping pings at the pool's checkout, and a FIFO pool takes its connections in
    turn: no connection is kept past its return."""
    pool = PostgresPool(replace(catalog, **changes))
    try:
        async with pool.connection() as conn:
            await conn.fetchval("SELECT 1")
        assert [] == pool._kept
        assert 1 == pool.stats().idle
    finally:
        await pool.close()


async def _our_pids_of(admin: asyncpg.Connection, settings: Settings, pid: int) -> list[int]:
    """``pid`` if that backend of ours is still connected (the server may take a moment)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        pids = [p for p in await _our_pids(admin, settings) if p == pid]
        if not pids or time.monotonic() > deadline:
            return pids
        await asyncio.sleep(0.05)
