"""Catalog writes of a few movies on PostgreSQL: the documents API's transaction.

The same operations as ``catalog/documents_sqlite.py``, under the lock order
and isolation of the upstream write-back (``catalog/repository.py``):

1. the ``catalog_meta`` version row ``FOR UPDATE`` (the catalog's write lock;
   an import holds it from start to swap), waited for at most
   ``write_lock_timeout_ms`` (then a 503 with Retry-After);
2. the batch's ``movies`` rows, ``ORDER BY source_key FOR UPDATE``;
3. genres, movies, movie_genres, alt_titles, title_words (in word order),
   then the change records and the word overlay.

REPEATABLE READ, retried whole on a serialization failure (the unit
recomputes everything from what it reads). A writer that waited for an import
gets 40001 once the import commits, and reruns against the swapped-in tables
(on a fresh statement cache: asyncpg's prepared statements name the old ones).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from reelsearch.catalog.changes import ChangeLog, record_postgres_changes
from reelsearch.catalog.documents import DeleteMovie, Operation, Outcome, PutMovie, WriteReport
from reelsearch.catalog.repository import (
    _DATA_COLUMNS,
    _LOCK_MOVIES,
    _LOCK_VERSION,
    _UPDATE_MOVIE,
    _add_word_counts,
    _bits_of,
    _data,
    _genre_bits,
)
from reelsearch.catalog.titles import joined_alt_titles, other_titles, split_alt_titles
from reelsearch.catalog.tsvector import indexed_words, title_tsvector
from reelsearch.db.transactions import Connect, TransactionStats, run_transaction
from reelsearch.errors import DatabaseUnavailable
from reelsearch.search.normalize import normalize, word_key
from reelsearch.search.snapshot import facet_tokens

_NEW_IDS = (
    "SELECT array_agg(nextval(pg_get_serial_sequence('movies', 'id'))) FROM generate_series(1, $1)"
)
# repository._INSERT_MOVIE with the id given (taken from the identity sequence above).
_INSERT_WITH_ID = """
INSERT INTO movies (id, source_key, title, original_title, year, runtime_min, rating, votes,
                    genres, kind, genre_mask, norm_title, word_key, alt_norm_titles, title_tsv,
                    search_rank, import_id, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::text::tsvector, $16,
        $17, $18)
"""
# asyncpg keeps prepared statements per connection; an import's swap leaves them naming
# dropped tables. Rerunning on the same connection after resetting them is safe.
_STALE = (asyncpg.InvalidCachedStatementError, asyncpg.UndefinedTableError)
# Each pooled connection may hold stale statements once: one rerun per connection, at most.
_STALE_ATTEMPTS = 4


async def write_movies(
    connect: Connect,
    operations: Sequence[Operation],
    *,
    lock_timeout_ms: int,
    now: str | None = None,
    stats: TransactionStats | None = None,
) -> WriteReport:
    """Apply ``operations`` (distinct movies) in one transaction."""
    stamp = now or datetime.now(UTC).isoformat(timespec="seconds")

    async def unit(conn: Any) -> WriteReport:
        await conn.execute(f"SET LOCAL lock_timeout = '{int(lock_timeout_ms)}ms'")
        return await _apply(conn, operations, stamp)

    for attempt in range(1, _STALE_ATTEMPTS + 1):
        try:
            return await run_transaction(
                connect, unit, isolation="repeatable_read", idempotent=True, stats=stats
            )
        except asyncpg.LockNotAvailableError:
            raise DatabaseUnavailable(
                f"the catalog is being written (an import or another writer) and stayed "
                f"locked for {lock_timeout_ms} ms"
            ) from None
        except _STALE:
            # asyncpg dropped the stale statement when it failed: the rerun prepares anew.
            if attempt == _STALE_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


async def _apply(conn: Any, operations: Sequence[Operation], now: str) -> WriteReport:
    version = int(await conn.fetchval(_LOCK_VERSION)) + 1
    keys = sorted(operation.source_key for operation in operations)
    rows = {row["source_key"]: row for row in await conn.fetch(_LOCK_MOVIES, keys)}
    known_alts: dict[int, dict[str, str]] = {}
    for movie_id, title, norm in await conn.fetch(
        "SELECT movie_id, title, norm_title FROM alt_titles WHERE movie_id = ANY($1::bigint[])",
        [row["id"] for row in rows.values()],
    ):
        known_alts.setdefault(movie_id, {})[title] = norm
    report = WriteReport(outcomes=[])
    puts = [
        (op.record, rows.get(op.source_key))
        for op in operations
        if isinstance(op, PutMovie) and not _is_unchanged(op, rows, known_alts)
    ]
    bits = await _genre_bits(conn, {name for record, _ in puts for name in record.genres})
    last_rank = int(await conn.fetchval("SELECT COALESCE(max(search_rank), 0) FROM movies"))
    log = ChangeLog()
    words: Counter[str] = Counter()
    genre_gone: list[tuple[int, int]] = []
    genre_new: list[tuple[int, int]] = []
    alt_gone: list[tuple[int, str]] = []
    alt_new: list[tuple[int, str, str]] = []
    changed = {record.source_key for record, _ in puts}
    # Ids for the new movies in one round trip, so all rows go in pipelined batches.
    new_ids = iter(await conn.fetchval(_NEW_IDS, sum(1 for _, row in puts if row is None)) or [])
    inserts: list[tuple[object, ...]] = []
    updates: list[tuple[object, ...]] = []
    deletes: list[int] = []
    for operation in operations:
        key = operation.source_key
        row: Any = rows.get(key)
        if isinstance(operation, DeleteMovie):
            if row is None:
                report.outcomes.append(Outcome(key, "not_found", None))
                continue
            before = indexed_words(row["norm_title"], split_alt_titles(row["alt_norm_titles"]))
            genre_gone += [(bit, row["search_rank"]) for bit in _bits_of(row["genre_mask"])]
            deletes.append(row["id"])
            words.subtract(before)
            log.add(row["id"], before, (), _facets_of(row))
            report.outcomes.append(Outcome(key, "deleted", row["id"]))
            continue
        if key not in changed:
            report.outcomes.append(Outcome(key, "unchanged", row["id"]))
            continue
        record = operation.record
        norm_title = normalize(record.title)
        titles = {title: normalize(title) for title in other_titles(record)}
        joined = joined_alt_titles(norm_title, titles.values())
        alternates = split_alt_titles(joined)
        mask = bits.mask(record.genres)
        values = (*_data(record), mask, norm_title, word_key(norm_title), joined,
                  title_tsvector(norm_title, alternates))  # fmt: skip
        after = indexed_words(norm_title, alternates)
        if row is None:
            last_rank += 1
            rank, old_mask, before, known = last_rank, 0, set(), {}
            movie_id = next(new_ids)
            inserts.append((movie_id, key, *values, rank, version, now))
            report.outcomes.append(Outcome(key, "created", movie_id))
        else:
            movie_id, rank, old_mask = row["id"], row["search_rank"], row["genre_mask"]
            before = indexed_words(row["norm_title"], split_alt_titles(row["alt_norm_titles"]))
            known = known_alts.get(movie_id, {})
            updates.append((movie_id, *values, rank, now))
            report.outcomes.append(Outcome(key, "updated", movie_id))
        words.subtract(before)
        words.update(after)
        genre_gone += [(bit, rank) for bit in _bits_of(old_mask & ~mask)]
        genre_new += [(bit, rank) for bit in _bits_of(mask & ~old_mask)]
        alt_gone += [(movie_id, title) for title in sorted(known) if title not in titles]
        alt_new += [(movie_id, t, n) for t, n in sorted(titles.items()) if t not in known]
        log.add(movie_id, before, after, "" if row is None else _facets_of(row),
                facet_tokens(record.genres, record.year, record.kind))  # fmt: skip
    if not log:
        return report  # nothing to write: the version stays
    # Gone first (their alternate titles, then them), then new and changed rows.
    await conn.execute("DELETE FROM alt_titles WHERE movie_id = ANY($1::bigint[])", deletes)
    await conn.execute("DELETE FROM movies WHERE id = ANY($1::bigint[])", deletes)
    await conn.executemany(_INSERT_WITH_ID, inserts)
    await conn.executemany(_UPDATE_MOVIE, updates)
    await conn.executemany(
        "DELETE FROM movie_genres WHERE genre_bit = $1 AND search_rank = $2", genre_gone
    )
    await conn.executemany(
        "INSERT INTO movie_genres (genre_bit, search_rank) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        genre_new,
    )
    await conn.executemany("DELETE FROM alt_titles WHERE movie_id = $1 AND title = $2", alt_gone)
    await conn.executemany(
        "INSERT INTO alt_titles (movie_id, title, norm_title) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING",
        alt_new,
    )
    await _add_word_counts(conn, words)
    await record_postgres_changes(conn, version, log)
    await conn.execute("UPDATE catalog_meta SET value = $1 WHERE key = 'version'", str(version))
    report.catalog_version = version
    return report


def _facets_of(row: Any) -> str:
    return facet_tokens(row["genres"].split(","), row["year"], row["kind"])


def _is_unchanged(
    operation: PutMovie, rows: dict[str, Any], known_alts: dict[int, dict[str, str]]
) -> bool:
    row = rows.get(operation.source_key)
    if row is None:
        return False
    record = operation.record
    same_data = _data(record) == tuple(row[c] for c in _DATA_COLUMNS)
    return same_data and set(other_titles(record)) == set(known_alts.get(row["id"], {}))
