"""Transactions on the real PostgreSQL server: real deadlocks, real serialization failures.

Two connections are made to collide on purpose, synchronised with asyncio
events (or by waiting until the server reports them blocked on a lock), so the
conflict surely happens; the tests then check who was retried and that every
effect is in the database exactly once.
"""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import asyncpg
import pytest

from reelsearch.catalog.records import MovieRecord
from reelsearch.catalog.repository import upsert_movies
from reelsearch.catalog.schema import upgrade_schema
from reelsearch.catalog.titles import split_alt_titles
from reelsearch.catalog.tsvector import indexed_words, title_tsvector
from reelsearch.config import Settings
from reelsearch.db import TransactionStats, reuse_connection, run_transaction
from reelsearch.errors import TransactionConflict

pytestmark = pytest.mark.postgres

# Low enough that a deadlock is found at once, high enough not to be checked for
# on ordinary short lock waits. Settable per session by a superuser (we are postgres).
DEADLOCK_TIMEOUT = "50ms"
# No event wait or lock wait here should take more than a fraction of this.
WAIT = 20.0

_databases = itertools.count()


@pytest.fixture
def dsn(postgres_databases: Callable[[str], str]) -> str:
    """A fresh catalog database (schema at head) as an asyncpg DSN."""
    settings = Settings(database_url=postgres_databases(f"tx_{next(_databases)}"))
    upgrade_schema(settings)
    return settings.postgres_dsn


@asynccontextmanager
async def connected(dsn: str) -> AsyncIterator[Any]:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"SET deadlock_timeout = '{DEADLOCK_TIMEOUT}'")
        yield conn
    finally:
        await conn.close()


def new_connections(dsn: str) -> Callable[[], Any]:
    """A ``connect`` that opens a new connection per attempt, as a pool checkout would."""
    return lambda: connected(dsn)


async def wait_for(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), WAIT)


async def wait_until_blocked(monitor: Any, conns: list[Any]) -> None:
    """Return once the server reports every one of ``conns`` waiting for a lock."""
    pids = [conn.get_server_pid() for conn in conns]
    query = (
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE pid = ANY($1::int[]) AND wait_event_type = 'Lock'"
    )
    async with asyncio.timeout(WAIT):
        while len(pids) != await monitor.fetchval(query, pids):
            await asyncio.sleep(0.01)


# --- run_transaction ---------------------------------------------------------------


async def test_real_deadlock_is_retried_and_both_effects_land_once(dsn: str) -> None:
    """Two units lock rows a, b in opposite orders: PostgreSQL aborts one (40P01),
    run_transaction reruns it, both commit, each row holds each unit's mark once."""
    async with connected(dsn) as setup:
        await setup.execute("CREATE TABLE pair (id text PRIMARY KEY, log text[] NOT NULL)")
        await setup.execute("INSERT INTO pair VALUES ('a', '{}'), ('b', '{}')")
    holds_first = {"ab": asyncio.Event(), "ba": asyncio.Event()}
    runs: Counter[str] = Counter()

    def locking(name: str, other: str) -> Callable[[Any], Awaitable[None]]:
        first, second = name

        async def unit(conn: Any) -> None:
            runs[name] += 1
            await conn.execute("UPDATE pair SET log = log || $2::text WHERE id = $1", first, name)
            if runs[name] == 1:  # the first time, hold the first row until the other does too
                holds_first[name].set()
                await wait_for(holds_first[other])
            await conn.execute("UPDATE pair SET log = log || $2::text WHERE id = $1", second, name)

        return unit

    stats = TransactionStats()
    async with connected(dsn) as one, connected(dsn) as two:
        await asyncio.gather(
            run_transaction(reuse_connection(one), locking("ab", "ba"), idempotent=True,
                            stats=stats),
            run_transaction(reuse_connection(two), locking("ba", "ab"), idempotent=True,
                            stats=stats),
        )  # fmt: skip
        rows = dict(await one.fetch("SELECT id, log FROM pair ORDER BY id"))

    assert {"40P01": 1} == stats.conflicts
    assert 1 == stats.retries
    assert 2 == stats.committed
    assert [1, 2] == sorted(runs.values())  # the victim ran twice, the winner once
    assert {"a": ["ab", "ba"], "b": ["ab", "ba"]} == {k: sorted(v) for k, v in rows.items()}


async def _race_increments(
    dsn: str, *, idempotent: bool, stats: TransactionStats
) -> tuple[list[object], int, Counter[str]]:
    """Two REPEATABLE READ read-then-write increments of one counter, interleaved.

    Both read n (taking their snapshots) before either writes, so the second
    writer finds the row changed after its snapshot: a real 40001.
    """
    async with connected(dsn) as setup:
        await setup.execute("CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL)")
        await setup.execute("INSERT INTO counter VALUES (1, 0)")
    has_read = {"x": asyncio.Event(), "y": asyncio.Event()}
    runs: Counter[str] = Counter()

    def increment(name: str, other: str) -> Callable[[Any], Awaitable[None]]:
        async def unit(conn: Any) -> None:
            runs[name] += 1
            n = await conn.fetchval("SELECT n FROM counter WHERE id = 1")
            if runs[name] == 1:
                has_read[name].set()
                await wait_for(has_read[other])
            await conn.execute("UPDATE counter SET n = $1 WHERE id = 1", n + 1)

        return unit

    async with connected(dsn) as one, connected(dsn) as two:
        outcomes = await asyncio.gather(
            *(
                run_transaction(reuse_connection(conn), increment(name, other),
                                isolation="repeatable_read", idempotent=idempotent, stats=stats)
                for conn, name, other in ((one, "x", "y"), (two, "y", "x"))
            ),
            return_exceptions=True,
        )  # fmt: skip
        final = await one.fetchval("SELECT n FROM counter WHERE id = 1")
    return outcomes, final, runs


async def test_real_serialization_failure_is_retried_and_no_update_is_lost(dsn: str) -> None:
    """Interleaved REPEATABLE READ increments: one gets 40001, is rerun on a new
    snapshot, and the counter ends at 2 (no lost update)."""
    stats = TransactionStats()

    outcomes, final, runs = await _race_increments(dsn, idempotent=True, stats=stats)

    assert [None, None] == outcomes
    assert 2 == final
    assert {"40001": 1} == stats.conflicts
    assert 1 == stats.retries
    assert [1, 2] == sorted(runs.values())


async def test_serialization_failure_of_a_non_idempotent_unit_is_not_retried(dsn: str) -> None:
    """With idempotent=False the loser raises TransactionConflict (from the driver's
    SerializationError) after one run; only the winner's increment is stored."""
    stats = TransactionStats()

    outcomes, final, runs = await _race_increments(dsn, idempotent=False, stats=stats)

    errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    assert 1 == len(errors)
    error = errors[0]
    assert isinstance(error, TransactionConflict)
    assert ("40001", 1) == (error.sqlstate, error.attempts)
    assert isinstance(error.__cause__, asyncpg.SerializationError)
    assert 1 == final
    assert (0, 1, 1) == (stats.retries, stats.gave_up, stats.committed)
    assert [1, 1] == sorted(runs.values())


async def test_other_errors_propagate_on_the_first_attempt(dsn: str) -> None:
    """A unique violation is not a race to retry: it is raised unchanged after one run."""
    runs = 0

    async def insert_twice(conn: Any) -> None:
        nonlocal runs
        runs += 1
        await conn.execute("INSERT INTO genres (bit, name) VALUES (0, 'Drama')")
        await conn.execute("INSERT INTO genres (bit, name) VALUES (1, 'Drama')")

    stats = TransactionStats()
    with pytest.raises(asyncpg.UniqueViolationError):
        await run_transaction(new_connections(dsn), insert_twice, idempotent=True, stats=stats)

    assert 1 == runs
    assert TransactionStats() == stats
    async with connected(dsn) as conn:
        assert 0 == await conn.fetchval("SELECT count(*) FROM genres")  # rolled back


async def test_attempts_are_bounded(dsn: str) -> None:
    """A unit that always loses (a real 40001 raised by the server) runs ``attempts``
    times, then TransactionConflict says so."""
    runs = 0

    async def always_conflicts(conn: Any) -> None:
        nonlocal runs
        runs += 1
        await conn.execute(
            "DO $$ BEGIN RAISE EXCEPTION 'lost again' USING ERRCODE = 'serialization_failure'; "
            "END $$"
        )

    stats = TransactionStats()
    with pytest.raises(TransactionConflict) as caught:
        await run_transaction(new_connections(dsn), always_conflicts, idempotent=True,
                              attempts=3, base_delay=0.001, stats=stats)  # fmt: skip

    assert 3 == runs == caught.value.attempts
    assert ({"40001": 3}, 2, 1, 0) == (
        stats.conflicts, stats.retries, stats.gave_up, stats.committed
    )  # fmt: skip


# --- upsert_movies -------------------------------------------------------------------

T1 = "2024-01-01T00:00:00+00:00"
T2 = "2024-02-02T00:00:00+00:00"

SEED = [
    MovieRecord("tmdb:603", "The Matrix", 1999, 136, 8.7, 2_000_000, ("Action", "Sci-Fi")),
    MovieRecord("tmdb:604", "The Matrix Reloaded", 2003, 138, 7.2, 600_000, ("Action",)),
    MovieRecord(
        "tmdb:194", "Amélie", 2001, 122, 8.3, 780_000, ("Comedy", "Romance"),
        original_title="Le fabuleux destin d'Amélie Poulain", alt_titles=("Amelie",),
    ),
]  # fmt: skip


async def seeded(dsn: str) -> dict[str, int]:
    """Write SEED at T1; source_key -> movie id."""
    async with connected(dsn) as conn:
        report = await upsert_movies(reuse_connection(conn), SEED, now=T1)
        ids = dict(await conn.fetch("SELECT source_key, id FROM movies"))
    assert sorted(ids.values()) == sorted(report.inserted)
    return ids


async def assert_catalog_consistent(conn: Any) -> None:
    """Every derived table agrees with movies: ranks, genre rows, word counts, tsvectors."""
    movies = await conn.fetch(
        "SELECT search_rank, genre_mask, norm_title, alt_norm_titles, title_tsv::text AS tsv "
        "FROM movies"
    )
    assert list(range(1, len(movies) + 1)) == sorted(m["search_rank"] for m in movies)
    expected_genre_rows = {
        (bit, m["search_rank"]) for m in movies for bit in range(63) if m["genre_mask"] >> bit & 1
    }
    assert expected_genre_rows == set(
        map(tuple, await conn.fetch("SELECT genre_bit, search_rank FROM movie_genres"))
    )
    documents = [(m["norm_title"], split_alt_titles(m["alt_norm_titles"])) for m in movies]
    expected_words = Counter(w for title, alts in documents for w in indexed_words(title, alts))
    assert expected_words == dict(await conn.fetch("SELECT word, docs FROM title_words"))
    canonical = "SELECT $1::text::tsvector::text"  # PostgreSQL's own spelling of a literal
    for m, (title, alts) in zip(movies, documents, strict=True):
        assert await conn.fetchval(canonical, title_tsvector(title, alts)) == m["tsv"]


async def test_new_movies_get_every_column_and_fresh_ranks(dsn: str) -> None:
    """New movies are written as an import writes them: normalized title, word key,
    the tsvector with the start marker, genre bits and rows, the next ranks, and
    they are found by a tsquery; the catalog version moves."""
    ids = await seeded(dsn)
    async with connected(dsn) as conn:
        report = await upsert_movies(
            reuse_connection(conn),
            [
                MovieRecord("tmdb:605", "The Matrix Revolutions", 2003, 129, 6.7, 500_000,
                            ("Action", "Thriller"), original_title="The Matrix Revolutions"),
                MovieRecord("tmdb:100", "Léon: The Professional", 1994, 110, 8.5, 1_200_000,
                            ("Crime",)),
            ],
            now=T2,
        )  # fmt: skip
        movie = await conn.fetchrow("SELECT * FROM movies WHERE source_key = 'tmdb:605'")
        genres = dict(await conn.fetch("SELECT name, bit FROM genres"))
        found = await conn.fetch(
            "SELECT source_key FROM movies WHERE title_tsv @@ $1::tsquery ORDER BY search_rank",
            "'^' <-> 'the' <-> 'matrix' <-> 're':*",
        )
        version = await conn.fetchval("SELECT value FROM catalog_meta WHERE key = 'version'")
        await assert_catalog_consistent(conn)

    assert 2 == len(report.inserted) and not report.updated and not report.unchanged
    assert 2 == report.catalog_version
    assert "2" == version
    # New names take the next bits in name order: the seed's four, then this batch's two.
    assert {"Action": 0, "Comedy": 1, "Romance": 2, "Sci-Fi": 3, "Crime": 4, "Thriller": 5} == (
        genres
    )
    assert {
        "title": "The Matrix Revolutions",
        "original_title": None,
        "genres": "Action,Thriller",
        "genre_mask": 0b100001,
        "norm_title": "the matrix revolutions",
        "word_key": "matrix revolutions the",
        "title_tsv": "'^':1 'matrix':3 'revolutions':4 'the':2",
        "search_rank": len(SEED) + 2,  # tmdb:100 sorts first and took len(SEED) + 1
        "updated_at": T2,
    } == {key: str(movie[key]) if key == "title_tsv" else movie[key] for key in (
        "title", "original_title", "genres", "genre_mask", "norm_title", "word_key",
        "title_tsv", "search_rank", "updated_at")}  # fmt: skip
    assert ["tmdb:604", "tmdb:605"] == [row["source_key"] for row in found]
    assert ids["tmdb:603"] not in report.inserted


async def test_title_tsv_escapes_quotes_and_backslashes(dsn: str) -> None:
    """PostgreSQL reads the literal back with ' and \\ inside words intact and the
    positions kept; a word too long for a tsvector is left out."""
    literal = title_tsvector("it's a\\b " + "x" * 3000 + " end")
    async with connected(dsn) as conn:
        read_back = await conn.fetchval("SELECT $1::text::tsvector::text", literal)

    assert "'^':1 'a\\\\b':3 'end':5 'it''s':2" == read_back


async def test_rerunning_the_same_upsert_changes_nothing(dsn: str) -> None:
    """The same batch again (in another order, with a duplicate) is all unchanged:
    no row written, updated_at and the catalog version stay."""
    ids = await seeded(dsn)
    async with connected(dsn) as conn:
        report = await upsert_movies(reuse_connection(conn), [*reversed(SEED), SEED[0]], now=T2)
        stamps = {r["updated_at"] for r in await conn.fetch("SELECT updated_at FROM movies")}
        version = await conn.fetchval("SELECT value FROM catalog_meta WHERE key = 'version'")

    assert sorted(ids.values()) == sorted(report.unchanged)
    assert ([], [], None) == (report.inserted, report.updated, report.catalog_version)
    assert {T1} == stamps
    assert "1" == version


async def test_a_changed_rating_moves_updated_at_of_that_movie_only(dsn: str) -> None:
    """Only the movie whose data changed is updated (updated_at moves); a changed
    title moves its words in title_words; the version moves once."""
    ids = await seeded(dsn)
    changed = [
        replace(SEED[0], rating=8.8),
        replace(SEED[1], title="Matrix Reloaded", genres=("Action", "Sci-Fi")),
        SEED[2],
    ]
    async with connected(dsn) as conn:
        report = await upsert_movies(reuse_connection(conn), changed, now=T2)
        stamps = dict(await conn.fetch("SELECT source_key, updated_at FROM movies"))
        rating = await conn.fetchval("SELECT rating FROM movies WHERE source_key = 'tmdb:603'")
        the_docs = await conn.fetchval("SELECT docs FROM title_words WHERE word = 'the'")
        await assert_catalog_consistent(conn)

    assert sorted([ids["tmdb:603"], ids["tmdb:604"]]) == sorted(report.updated)
    assert [ids["tmdb:194"]] == report.unchanged
    assert 2 == report.catalog_version
    assert {"tmdb:603": T2, "tmdb:604": T2, "tmdb:194": T1} == stamps
    assert 8.8 == rating
    assert 1 == the_docs  # "The Matrix Reloaded" gave its "the" back


async def test_concurrent_overlapping_upserts_in_opposite_orders_do_not_deadlock(
    dsn: str,
) -> None:
    """Two batches sharing two movies, given in opposite orders, while a third
    transaction holds one of those movies: they queue up instead of deadlocking,
    the second in line is rerun once (40001), both batches' new movies are
    written once, and both shared movies end with the values of one batch."""
    ids = await seeded(dsn)
    first = [
        replace(SEED[1], rating=1.0),
        replace(SEED[0], rating=1.0),
        MovieRecord("tmdb:1", "Alien", 1979, 117, 8.5, 900_000, ("Horror",)),
    ]
    second = [replace(SEED[0], rating=2.0), replace(SEED[1], rating=2.0),
              MovieRecord("tmdb:2", "Aliens", 1986, 137, 8.4, 750_000, ("Horror",))]  # fmt: skip
    stats = TransactionStats()
    async with connected(dsn) as blocker, connected(dsn) as one, connected(dsn) as two:
        hold = blocker.transaction()
        await hold.start()
        await blocker.execute("SELECT 1 FROM movies WHERE source_key = 'tmdb:603' FOR UPDATE")
        tasks = [
            asyncio.create_task(upsert_movies(reuse_connection(conn), batch, now=T2, stats=stats))
            for conn, batch in ((one, first), (two, second))
        ]
        await wait_until_blocked(blocker, [one, two])
        await hold.rollback()
        reports = await asyncio.wait_for(asyncio.gather(*tasks), WAIT)
        ratings = dict(await one.fetch("SELECT source_key, rating FROM movies"))
        version = await one.fetchval("SELECT value FROM catalog_meta WHERE key = 'version'")
        await assert_catalog_consistent(one)

    assert 0 == stats.deadlocks
    assert {"40001": 1} == stats.conflicts  # the second in line saw the first's commit
    assert 2 == stats.committed
    assert [1, 1] == [len(report.inserted) for report in reports]
    assert {"tmdb:603", "tmdb:604", "tmdb:194", "tmdb:1", "tmdb:2"} == ratings.keys()
    assert ratings["tmdb:603"] == ratings["tmdb:604"]  # both shared movies from one batch
    assert "3" == version  # seed, then each batch once
    assert ids["tmdb:194"] not in reports[0].updated + reports[1].updated


async def test_an_upsert_waiting_for_an_import_does_not_block_its_table_swap(dsn: str) -> None:
    """An import holds the version row and then swaps the movies table (ACCESS
    EXCLUSIVE). The upsert waits for the version row holding no lock on movies,
    so the swap goes through; the upsert is rerun once (40001) and decides on
    the imported catalog, which already has its rating: nothing to write."""
    ids = await seeded(dsn)
    stats = TransactionStats()
    async with connected(dsn) as importer, connected(dsn) as writer:
        tx = importer.transaction()
        await tx.start()
        await importer.execute("SELECT value FROM catalog_meta WHERE key = 'version' FOR UPDATE")
        task = asyncio.create_task(
            upsert_movies(reuse_connection(writer), [replace(SEED[0], rating=9.0)], now=T2,
                          stats=stats)
        )  # fmt: skip
        await wait_until_blocked(importer, [writer])
        await importer.execute("SET LOCAL lock_timeout = '5s'")  # a failure, not a hang
        await importer.execute("LOCK TABLE movies IN ACCESS EXCLUSIVE MODE")
        await importer.execute("UPDATE movies SET rating = 9.0 WHERE source_key = 'tmdb:603'")
        await importer.execute("UPDATE catalog_meta SET value = '2' WHERE key = 'version'")
        await tx.commit()
        report = await asyncio.wait_for(task, WAIT)
        movie = await writer.fetchrow(
            "SELECT rating, updated_at FROM movies WHERE source_key = 'tmdb:603'"
        )
        version = await writer.fetchval("SELECT value FROM catalog_meta WHERE key = 'version'")

    assert {"40001": 1} == stats.conflicts
    assert ([ids["tmdb:603"]], [], None) == (
        report.unchanged,
        report.updated,
        report.catalog_version,
    )
    assert (9.0, T1, "2") == (movie["rating"], movie["updated_at"], version)
