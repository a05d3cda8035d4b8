"""Catalog writes of a few movies on SQLite: one short transaction per request.

``write_movies`` applies puts and deletes in one ``BEGIN IMMEDIATE``
transaction on a writer connection of its own. SQLite has one writer at a
time: a second writer, or an import (which holds the write lock from start
to COMMIT), makes this one wait up to ``write_lock_timeout_ms`` and then
refuses it (``DatabaseUnavailable``, a 503 with Retry-After), never
half-applied. Readers in WAL mode keep the last commit meanwhile.

Per movie it keeps every structure an import builds in step: the row in
``movies``, its ``alt_titles``, ``alt_norm_titles``, its document in the
contentless ``title_fts`` (rowid = search rank: the old document is deleted
with the exact text it was indexed with), ``movie_genres`` and new
``genres``. A new movie ranks after every known one (the next import ranks
it by popularity); a replaced one keeps its rank. The writes that change
something bump the catalog version once and leave change records and the
word overlay (``catalog/changes.py``); a batch that changes nothing writes
nothing, so the same request twice is one change.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from reelsearch.catalog.changes import ChangeLog, record_sqlite_changes
from reelsearch.catalog.documents import DeleteMovie, Operation, Outcome, PutMovie, WriteReport
from reelsearch.catalog.records import GenreBits, MovieRecord
from reelsearch.catalog.titles import (
    joined_alt_titles,
    other_titles,
    split_alt_titles,
    title_document,
)
from reelsearch.catalog.tsvector import indexed_words
from reelsearch.config import Settings
from reelsearch.db import connect_writer
from reelsearch.errors import CatalogError, DatabaseUnavailable
from reelsearch.search.normalize import normalize, word_key
from reelsearch.search.snapshot import facet_tokens

DATA_COLUMNS = ("title", "original_title", "year", "runtime_min", "rating", "votes", "genres",
                "kind")  # fmt: skip
_SELECT = (
    f"SELECT id, {', '.join(DATA_COLUMNS)}, genre_mask, norm_title, alt_norm_titles, search_rank "
    "FROM movies WHERE source_key = ?"
)
_INSERT = """
INSERT INTO movies (source_key, title, original_title, year, runtime_min, rating, votes, genres,
                    kind, genre_mask, norm_title, word_key, alt_norm_titles, search_rank,
                    import_id, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_UPDATE = """
UPDATE movies SET title = ?, original_title = ?, year = ?, runtime_min = ?, rating = ?,
    votes = ?, genres = ?, kind = ?, genre_mask = ?, norm_title = ?, word_key = ?,
    alt_norm_titles = ?, updated_at = ?
WHERE id = ?
"""
_FTS_DELETE = "INSERT INTO title_fts (title_fts, rowid, norm_title) VALUES ('delete', ?, ?)"
_FTS_INSERT = "INSERT INTO title_fts (rowid, norm_title) VALUES (?, ?)"


def data_values(record: MovieRecord) -> tuple[object, ...]:
    """``record`` as the values of DATA_COLUMNS, the way the importers store them."""
    original = record.original_title if record.original_title != record.title else None
    return (record.title, original, record.year, record.runtime_min, record.rating,
            record.votes, ",".join(record.genres), record.kind)  # fmt: skip


def write_movies(
    settings: Settings, operations: Sequence[Operation], *, now: str | None = None
) -> WriteReport:
    """Apply ``operations`` (distinct movies) in one transaction; blocking (call it in a thread)."""
    stamp = now or datetime.now(UTC).isoformat(timespec="seconds")
    conn = connect_writer(settings)
    try:
        conn.execute(f"PRAGMA busy_timeout={int(settings.write_lock_timeout_ms)}")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise DatabaseUnavailable(
                f"the catalog is being written (an import or another writer) and stayed "
                f"locked for {settings.write_lock_timeout_ms} ms: {exc}"
            ) from None
        try:
            report = _apply(conn, operations, stamp)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT" if report.catalog_version is not None else "ROLLBACK")
        return report
    finally:
        conn.close()


def _apply(conn: sqlite3.Connection, operations: Sequence[Operation], now: str) -> WriteReport:
    meta = conn.execute("SELECT value FROM catalog_meta WHERE key = 'version'").fetchone()
    if meta is None:
        raise CatalogError("the catalog has no version: import one first")
    version = int(meta[0]) + 1
    bits = GenreBits(conn.execute("SELECT name, bit FROM genres"), error=CatalogError)
    last_rank = conn.execute("SELECT coalesce(max(search_rank), 0) FROM movies").fetchone()[0]
    log = ChangeLog()
    report = WriteReport(outcomes=[])
    for operation in operations:
        row = conn.execute(_SELECT, (operation.source_key,)).fetchone()
        if isinstance(operation, DeleteMovie):
            report.outcomes.append(_delete(conn, operation.source_key, row, log))
            continue
        outcome, last_rank = _put(conn, operation, row, bits, version, now, log, last_rank)
        report.outcomes.append(outcome)
    if not log:
        return report  # nothing changed: the caller rolls back, the version stays
    if bits.added:
        conn.executemany("INSERT INTO genres (bit, name) VALUES (?, ?)", bits.take_added())
    record_sqlite_changes(conn, version, log)
    conn.execute("UPDATE catalog_meta SET value = ? WHERE key = 'version'", (str(version),))
    report.catalog_version = version
    return report


def _put(
    conn: sqlite3.Connection,
    operation: PutMovie,
    row: Any,
    bits: GenreBits,
    version: int,
    now: str,
    log: ChangeLog,
    last_rank: int,
) -> tuple[Outcome, int]:
    record = operation.record
    titles = other_titles(record)
    values = data_values(record)
    if row is not None:
        movie_id = int(row[0])
        known = {t for (t,) in conn.execute("SELECT title FROM alt_titles WHERE movie_id = ?",
                                            (movie_id,))}  # fmt: skip
        if tuple(row[1:9]) == values and known == set(titles):
            return Outcome(record.source_key, "unchanged", movie_id), last_rank
    norm_title = normalize(record.title)
    alt_norms = {title: normalize(title) for title in titles}
    joined = joined_alt_titles(norm_title, alt_norms.values())
    mask = bits.mask(record.genres)
    common = (*values, mask, norm_title, word_key(norm_title), joined)
    if row is None:
        last_rank += 1
        rank = last_rank
        cursor = conn.execute(_INSERT, (record.source_key, *common, rank, version, now))
        movie_id = int(cursor.lastrowid or 0)
        before: set[str] = set()
        old_mask = 0
        result = "created"
    else:
        old_mask, old_norm, old_joined, rank = row[9], row[10], row[11], row[12]
        conn.execute(_FTS_DELETE, (rank, title_document(old_norm, old_joined)))
        conn.execute(_UPDATE, (*common, now, movie_id))
        conn.execute("DELETE FROM alt_titles WHERE movie_id = ?", (movie_id,))
        before = indexed_words(old_norm, split_alt_titles(old_joined))
        result = "updated"
    conn.executemany(
        "INSERT INTO alt_titles (movie_id, title, norm_title) VALUES (?, ?, ?)",
        [(movie_id, title, norm) for title, norm in alt_norms.items()],
    )
    conn.execute(_FTS_INSERT, (rank, title_document(norm_title, joined)))
    _set_genre_rows(conn, rank, old_mask, mask)
    log.add(
        movie_id,
        before,
        indexed_words(norm_title, split_alt_titles(joined)),
        "" if row is None else facet_tokens(row[7].split(","), row[3], row[8]),
        facet_tokens(record.genres, record.year, record.kind),
    )
    return Outcome(record.source_key, result, movie_id), last_rank


def _delete(conn: sqlite3.Connection, key: str, row: Any, log: ChangeLog) -> Outcome:
    if row is None:
        return Outcome(key, "not_found", None)
    movie_id, mask, norm, joined, rank = row[0], row[9], row[10], row[11], row[12]
    if rank is not None:
        conn.execute(_FTS_DELETE, (rank, title_document(norm, joined)))
        _set_genre_rows(conn, rank, mask, 0)
    conn.execute("DELETE FROM alt_titles WHERE movie_id = ?", (movie_id,))
    conn.execute("DELETE FROM movies WHERE id = ?", (movie_id,))
    log.add(movie_id, indexed_words(norm, split_alt_titles(joined)), (),
            facet_tokens(row[7].split(","), row[3], row[8]))  # fmt: skip
    return Outcome(key, "deleted", movie_id)


def _set_genre_rows(conn: sqlite3.Connection, rank: int, old_mask: int, mask: int) -> None:
    """``movie_genres`` rows of the movie at ``rank``: from ``old_mask``'s bits to ``mask``'s."""
    gone = old_mask & ~mask
    new = mask & ~old_mask
    conn.executemany(
        "DELETE FROM movie_genres WHERE genre_bit = ? AND search_rank = ?",
        [(bit, rank) for bit in range(gone.bit_length()) if gone >> bit & 1],
    )
    conn.executemany(
        "INSERT OR IGNORE INTO movie_genres (genre_bit, search_rank) VALUES (?, ?)",
        [(bit, rank) for bit in range(new.bit_length()) if new >> bit & 1],
    )
