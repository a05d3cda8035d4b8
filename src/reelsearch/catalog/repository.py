"""Movies written to the PostgreSQL catalog one batch at a time (upstream write-back).

``upsert_movies`` adds the movies an upstream provider returned, or updates
the ones the catalog has, in one transaction. It fills every column as an
import does (normalized title, word key, alternate titles with the ones the
movie already has, ``alt_norm_titles`` and the ``title_tsv`` literal of all
its titles, genre bits and rows, the ``title_words`` counts) and bumps the
catalog version so search engines reload.

Lock order. Deadlocks happen when two transactions take the same locks in
opposite orders, so every writer of the catalog takes them in this one:

1. the ``catalog_meta`` row ``'version'`` (``FOR UPDATE``), the catalog's
   write lock, before anything else. An import takes it first too and later
   swaps the ``movies`` tables (ACCESS EXCLUSIVE); any lock on ``movies``,
   even a plain read's, held while waiting for this row would close a cycle
   with that swap;
2. the ``movies`` rows of the batch, by ``source_key``, in one
   ``SELECT ... ORDER BY source_key FOR UPDATE`` (whatever order the
   provider gave them in), so a writer outside this protocol that locks
   movie rows in key order waits instead of deadlocking;
3. ``genres`` (new names in name order), then the batch's ``movies`` rows
   and new rows, ``movie_genres``, ``alt_titles``, and last ``title_words``
   (in word order).

What step 3 touches is shared by all writers (the next search rank and genre
bit, word counts): step 1 makes them take turns, so two batches never hold
what the other needs next. A batch that changes nothing writes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from reelsearch.catalog.changes import ChangeLog, record_postgres_changes
from reelsearch.catalog.records import GenreBits, MovieRecord
from reelsearch.catalog.titles import joined_alt_titles, other_titles, split_alt_titles
from reelsearch.catalog.tsvector import indexed_words, title_tsvector
from reelsearch.db.transactions import Connect, TransactionStats, run_transaction
from reelsearch.errors import CatalogError
from reelsearch.search.normalize import normalize, word_key
from reelsearch.search.snapshot import facet_tokens

# The columns a provider supplies; updated_at moves only when one of them changes.
_DATA_COLUMNS = (
    "title",
    "original_title",
    "year",
    "runtime_min",
    "rating",
    "votes",
    "genres",
    "kind",
)

_LOCK_MOVIES = f"""
SELECT id, source_key, {", ".join(_DATA_COLUMNS)}, genre_mask, norm_title, alt_norm_titles,
    search_rank
FROM movies WHERE source_key = ANY($1::text[]) ORDER BY source_key FOR UPDATE
"""
_LOCK_VERSION = "SELECT value FROM catalog_meta WHERE key = 'version' FOR UPDATE"
# Parameters after the key: _data(record), then genre_mask, norm_title, word_key,
# alt_norm_titles, title_tsv, search_rank (and import_id for a new movie), updated_at.
_INSERT_MOVIE = """
INSERT INTO movies (source_key, title, original_title, year, runtime_min, rating, votes, genres,
                    kind, genre_mask, norm_title, word_key, alt_norm_titles, title_tsv,
                    search_rank, import_id, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::text::tsvector, $15, $16,
        $17)
RETURNING id
"""
_UPDATE_MOVIE = """
UPDATE movies SET title = $2, original_title = $3, year = $4, runtime_min = $5, rating = $6,
    votes = $7, genres = $8, kind = $9, genre_mask = $10, norm_title = $11, word_key = $12,
    alt_norm_titles = $13, title_tsv = $14::text::tsvector, search_rank = $15, updated_at = $16
WHERE id = $1
"""
# Sorted by word, so concurrent writers (were they not serialized) would lock in one order.
_ADD_WORD_COUNTS = """
INSERT INTO title_words (word, docs)
SELECT word, docs FROM unnest($1::text[], $2::int[]) AS delta (word, docs) ORDER BY word
ON CONFLICT (word) DO UPDATE SET docs = title_words.docs + excluded.docs
"""


@dataclass(slots=True)
class UpsertReport:
    """Movie ids by what happened to them, and the catalog version it committed."""

    inserted: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    catalog_version: int | None = None  # None: nothing changed, the version stayed


async def upsert_movies(
    connect: Connect,
    records: Sequence[MovieRecord],
    *,
    now: str | None = None,
    stats: TransactionStats | None = None,
) -> UpsertReport:
    """Insert or update ``records`` (by ``source_key``; the last of duplicates wins).

    ``connect`` gives the connection for each attempt (see ``run_transaction``);
    ``now`` is the ``updated_at`` written to changed movies (default: this second, UTC).
    """
    batch = sorted({r.source_key: r for r in records}.values(), key=lambda r: r.source_key)
    stamp = now or datetime.now(UTC).isoformat(timespec="seconds")

    async def unit(conn: Any) -> UpsertReport:
        return await _upsert(conn, batch, stamp)

    # REPEATABLE READ prevents lost updates: the unit reads rows, decides from
    # them (is it unchanged? which words does the old title give back? what is
    # the highest rank?) and writes the result. In REPEATABLE READ all of it
    # reads one snapshot, and PostgreSQL refuses (40001) to update or lock a
    # row that another transaction changed after that snapshot, so a decision
    # is never written over data it did not see, whether or not the other
    # writer took the version lock: the unit is rerun instead (it recomputes
    # everything from the database, so it is idempotent). A writer that waited
    # for the version lock gets 40001 once the holder commits, and its rerun
    # starts from a snapshot that includes that commit. READ COMMITTED would
    # give each statement a newer snapshot than the one before, and would let
    # an UPDATE overwrite a row changed by a writer outside the protocol.
    # SERIALIZABLE would only add predicate locks and false aborts: the locks
    # above already cover every row the decisions depend on.
    return await run_transaction(
        connect, unit, isolation="repeatable_read", idempotent=True, stats=stats
    )


async def _upsert(conn: Any, batch: list[MovieRecord], now: str) -> UpsertReport:
    report = UpsertReport()
    if not batch:
        return report
    version = int(await conn.fetchval(_LOCK_VERSION)) + 1
    changes, known_alts = await _lock_and_compare(conn, batch, report)
    if not changes:
        return report  # nothing to write, the version stays
    bits = await _genre_bits(conn, {name for record, _ in changes for name in record.genres})
    # New movies rank after every known one; the next import ranks them by popularity.
    last_rank = int(await conn.fetchval("SELECT COALESCE(max(search_rank), 0) FROM movies"))
    words: Counter[str] = Counter()  # title_words.docs to add (negative: to take back)
    genre_rows_gone: list[tuple[int, int]] = []
    genre_rows_new: list[tuple[int, int]] = []
    alt_rows: list[tuple[int, str, str]] = []
    log = ChangeLog()  # which movies changed, for caches (catalog/changes.py)
    for record, row in changes:
        norm_title = normalize(record.title)
        mask = bits.mask(record.genres)
        old_rank = None if row is None else row["search_rank"]
        rank = old_rank if old_rank is not None else (last_rank := last_rank + 1)
        old_mask = 0 if old_rank is None else row["genre_mask"]
        # Every title the movie has, the known ones and the record's, by the one rule.
        known = {} if row is None else known_alts.get(row["id"], {})
        new_alts = {t: normalize(t) for t in other_titles(record) if t not in known}
        joined = joined_alt_titles(norm_title, [*known.values(), *new_alts.values()])
        alternates = split_alt_titles(joined)
        tsvector = title_tsvector(norm_title, alternates)
        values = (*_data(record), mask, norm_title, word_key(norm_title), joined, tsvector)
        if row is None:
            # import_id: the version that added it, as an import stamps its movies.
            movie_id = int(
                await conn.fetchval(_INSERT_MOVIE, record.source_key, *values, rank, version, now)
            )
            report.inserted.append(movie_id)
        else:
            movie_id = row["id"]
            await conn.execute(_UPDATE_MOVIE, movie_id, *values, rank, now)
            report.updated.append(movie_id)
        before = (
            set()
            if row is None
            else indexed_words(row["norm_title"], split_alt_titles(row["alt_norm_titles"]))
        )
        after = indexed_words(norm_title, alternates)
        words.subtract(before)
        words.update(after)
        log.add(
            movie_id,
            before,
            after,
            "" if row is None else facet_tokens(row["genres"].split(","), row["year"], row["kind"]),
            facet_tokens(record.genres, record.year, record.kind),
        )
        genre_rows_gone += [(bit, rank) for bit in _bits_of(old_mask & ~mask)]
        genre_rows_new += [(bit, rank) for bit in _bits_of(mask & ~old_mask)]
        alt_rows += [(movie_id, t, norm) for t, norm in sorted(new_alts.items())]

    await conn.executemany(
        "DELETE FROM movie_genres WHERE genre_bit = $1 AND search_rank = $2", genre_rows_gone
    )
    await conn.executemany(
        "INSERT INTO movie_genres (genre_bit, search_rank) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        genre_rows_new,
    )
    await conn.executemany(
        "INSERT INTO alt_titles (movie_id, title, norm_title) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING",
        alt_rows,
    )
    await _add_word_counts(conn, words)
    await record_postgres_changes(conn, version, log)
    await conn.execute("UPDATE catalog_meta SET value = $1 WHERE key = 'version'", str(version))
    report.catalog_version = version
    return report


async def _lock_and_compare(
    conn: Any, batch: list[MovieRecord], report: UpsertReport
) -> tuple[list[tuple[MovieRecord, Any]], dict[int, dict[str, str]]]:
    """Lock the batch's movies (step 2); ``(record, row or None)`` for each that differs.

    Unchanged movies go to ``report.unchanged``. A known movie differs when a
    data column would change or a provider brings an alternate (or original)
    title it lacks. Also returns the known movies' alternate titles:
    movie id -> {title: norm_title}.
    """
    rows = {
        row["source_key"]: row
        for row in await conn.fetch(_LOCK_MOVIES, [r.source_key for r in batch])
    }
    # Their alternate titles belong to the movies just locked: nobody else writes them now.
    known_alts: dict[int, dict[str, str]] = {}
    for movie_id, title, norm_title in await conn.fetch(
        "SELECT movie_id, title, norm_title FROM alt_titles WHERE movie_id = ANY($1::bigint[])",
        [row["id"] for row in rows.values()],
    ):
        known_alts.setdefault(movie_id, {})[title] = norm_title
    changes: list[tuple[MovieRecord, Any]] = []
    for record in batch:
        row = rows.get(record.source_key)
        if row is None:
            changes.append((record, None))
        elif _data(record) != tuple(row[c] for c in _DATA_COLUMNS) or any(
            title not in known_alts.get(row["id"], {}) for title in other_titles(record)
        ):
            changes.append((record, row))
        else:
            report.unchanged.append(row["id"])
    return changes, known_alts


def _data(record: MovieRecord) -> tuple[object, ...]:
    """``record`` as the values of _DATA_COLUMNS, the way the importer stores them."""
    original = record.original_title if record.original_title != record.title else None
    return (
        record.title,
        original,
        record.year,
        record.runtime_min,
        record.rating,
        record.votes,
        ",".join(record.genres),
        record.kind,
    )


async def _genre_bits(conn: Any, names: set[str]) -> GenreBits:
    """The genre bits, new genres among ``names`` given the next bits (in name order)."""
    bits = GenreBits(await conn.fetch("SELECT name, bit FROM genres"), error=CatalogError)
    bits.mask(sorted(names))
    if bits.added:
        await conn.executemany("INSERT INTO genres (bit, name) VALUES ($1, $2)", bits.take_added())
    return bits


def _bits_of(mask: int) -> list[int]:
    return [bit for bit in range(mask.bit_length()) if mask >> bit & 1]


async def _add_word_counts(conn: Any, delta: Counter[str]) -> None:
    """Add ``delta`` to title_words.docs; words no title holds any more are removed."""
    changed = sorted(word for word, n in delta.items() if n)
    if not changed:
        return
    await conn.execute(_ADD_WORD_COUNTS, changed, [delta[word] for word in changed])
    await conn.execute(
        "DELETE FROM title_words WHERE word = ANY($1::text[]) AND docs <= 0", changed
    )
