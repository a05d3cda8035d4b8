"""One import = one PostgreSQL transaction that swaps freshly built tables in.

COPY streams what the importer reads into temporary tables. At the end, one
``INSERT ... SELECT`` per table builds staging copies of ``movies``,
``alt_titles``, ``movie_genres`` and ``title_words``: ids kept by source key,
new ids from the identity sequence, popularity ranks computed, rows written
in rank order. The live tables' indexes and constraints are read back from
the catalog and built on the staging copies, which are then analyzed. Only
then does a short ACCESS EXCLUSIVE section drop the live tables and rename
the staging ones (and their indexes, constraints and sequence) into place
(``catalog/postgres_swap.py``). This module streams the rows in and owns the
transaction; the steps after it (ranking, the staging tables, the word index, the
swap) are ``catalog/postgres_finish.py``.

Where a server step needs nothing Python is still doing, the two overlap
on the one connection (``catalog/postgres_overlap.py``, decision 0023): the
ranking runs while Python reads the alternate titles, the index builds while
Python counts the title words and builds the word index.

Searches keep reading the old tables until COMMIT and see the new ones
after it, never half of each. The swap waits at most ``swap_lock_timeout``
per attempt for searches that hold the tables, so a long reader delays the
import instead of stalling every search queued behind it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import chain, islice
from types import TracebackType
from typing import Any

import psycopg
from psycopg import sql

from reelsearch.catalog.postgres_finish import IMPORT_WORK_MEM, ImportFinish
from reelsearch.catalog.postgres_import_sql import (
    ALT_TITLE_TYPES,
    COPY_ALT_TITLES,
    COPY_MOVIES,
    COPY_RATINGS,
    MOVIE_TYPES,
    RATING_TYPES,
    TEMP_TABLES,
)
from reelsearch.catalog.postgres_overlap import Overlap
from reelsearch.catalog.postgres_swap import (
    STAGING,
    SWAPPED_TABLES,
)
from reelsearch.catalog.progress import Progress
from reelsearch.catalog.records import GenreBits, ImportReport, MovieRecord
from reelsearch.catalog.schema import upgrade_schema
from reelsearch.catalog.titles import other_titles
from reelsearch.catalog.tsvector import title_tsvector
from reelsearch.catalog.writer import batched
from reelsearch.config import Settings
from reelsearch.errors import CatalogError, ImportFailed
from reelsearch.search.normalize import normalize, word_key

log = logging.getLogger(__name__)

# Per-session memory for the import's index builds (its sorts': IMPORT_WORK_MEM).
IMPORT_MAINTENANCE_WORK_MEM = "1GB"
# B-tree builds sort in this many worker processes besides the import's own
# (PostgreSQL builds GIN indexes in one process until version 18).
IMPORT_INDEX_WORKERS = 2
# Temporary tables hold the streamed rows; local buffers keep them off disk.
IMPORT_TEMP_BUFFERS = "512MB"
# How often the server checks that the import's client is still there (PostgreSQL 14+).
CLIENT_CHECK_INTERVAL = "1s"
# Alternate titles Python reads and holds while the server ranks the movies
# (about 250 bytes each): more than a 1 M-title catalog has, and a bound on
# memory for larger dumps, whose remaining rows stream in once the ranking is done.
ALT_TITLES_WHILE_RANKING = 1_000_000


class PostgresCatalogImport(ImportFinish):
    """The PostgreSQL twin of :class:`~reelsearch.catalog.writer.CatalogImport`.

    Same API and meaning: a context manager around one import transaction;
    ``replace=True`` makes the catalog exactly what this import read, keeping
    the ids of movies seen before.
    """

    # A second import waits this long (seconds) for the running one, then gives
    # up, as SQLite's busy timeout does.
    import_lock_timeout = 5.0
    # Longest a search waits behind the swap per attempt. Below deadlock_timeout
    # (1 s by default), so in a lock cycle with a reader the import backs off first.
    swap_lock_timeout = 0.5
    # How long the import keeps retrying the swap before it gives up and rolls back.
    swap_patience = 60.0

    def __init__(
        self,
        settings: Settings,
        source: str,
        *,
        replace: bool = True,
        progress: Progress | None = None,
    ) -> None:
        self.settings = settings
        self.report = ImportReport(source=source)
        self.replace = replace
        self.progress = progress or Progress()
        self._started = self._phase_started = time.perf_counter()
        self._now = datetime.now(UTC).isoformat(timespec="seconds")
        self._conn: psycopg.Connection[Any] | None = None
        self._genre_bits = GenreBits(())
        # genres tuple -> (display text, mask): a catalog has a few thousand combinations.
        self._genre_columns: dict[tuple[str, ...], tuple[str, int]] = {}
        self._ratings_staged = False
        # import_ranked and import_titles hold the movies added so far.
        self._ranked = False
        self._seq = 0
        self.import_id = 0

    @property
    def conn(self) -> psycopg.Connection[Any]:
        assert self._conn is not None, "use PostgresCatalogImport as a context manager"
        return self._conn

    def __enter__(self) -> PostgresCatalogImport:
        upgrade_schema(self.settings)
        try:
            self._conn = psycopg.connect(
                self.settings.postgres_dsn, application_name="reelsearch import"
            )
        except psycopg.Error as exc:
            raise CatalogError(f"cannot connect to PostgreSQL: {str(exc).strip()}") from exc
        try:
            self._begin()
        except BaseException:
            self.conn.close()
            self._conn = None
            raise
        return self

    def _begin(self) -> None:
        conn = self.conn
        # The import is re-runnable, so losing its last moments in a crash
        # costs nothing; not waiting for the WAL flush at COMMIT saves time.
        conn.execute("SET LOCAL synchronous_commit = off")
        # Compiling these one-off bulk statements costs more than it saves.
        conn.execute("SET LOCAL jit = off")
        conn.execute(f"SET LOCAL work_mem = '{IMPORT_WORK_MEM}'")
        conn.execute(f"SET LOCAL maintenance_work_mem = '{IMPORT_MAINTENANCE_WORK_MEM}'")
        conn.execute(f"SET LOCAL max_parallel_maintenance_workers = {IMPORT_INDEX_WORKERS}")
        conn.execute(f"SET LOCAL temp_buffers = '{IMPORT_TEMP_BUFFERS}'")
        # An import killed mid-statement (SIGKILL, a lost host): the server notices the
        # closed socket at this interval and rolls back, instead of finishing the
        # statement (an index build: many seconds at 1 M titles) holding the import lock.
        if conn.info.server_version >= 140000:  # where the setting exists
            conn.execute(f"SET LOCAL client_connection_check_interval = '{CLIENT_CHECK_INTERVAL}'")
        conn.execute(f"SET LOCAL lock_timeout = '{int(self.import_lock_timeout * 1000)}ms'")
        try:
            # The version row is the import lock: a second import waits here.
            row = conn.execute(
                "SELECT value FROM catalog_meta WHERE key = 'version' FOR UPDATE"
            ).fetchone()
        except psycopg.errors.LockNotAvailable:
            raise ImportFailed(
                f"another import is running (waited {self.import_lock_timeout:g} s)"
            ) from None
        conn.execute("SET LOCAL lock_timeout = 0")
        assert row is not None, "the migration inserts the version row"
        self.import_id = int(row[0]) + 1
        self._genre_bits = GenreBits(conn.execute("SELECT name, bit FROM genres").fetchall())
        conn.execute(TEMP_TABLES)
        for table in SWAPPED_TABLES:
            # LIKE copies columns, defaults and the identity (a new sequence) but no
            # indexes: those are built once the rows are in.
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING IDENTITY "
                    "INCLUDING GENERATED INCLUDING CONSTRAINTS INCLUDING STORAGE "
                    "INCLUDING COMPRESSION)"
                ).format(sql.Identifier(table + STAGING), sql.Identifier(table))
            )
            # ... nor storage parameters (fillfactor, autovacuum_*) a DBA may have set.
            options = conn.execute(
                "SELECT reloptions FROM pg_class WHERE oid = %s::regclass", (table,)
            ).fetchone()
            if options and options[0]:
                conn.execute(
                    sql.SQL("ALTER TABLE {} SET ({})").format(
                        sql.Identifier(table + STAGING), sql.SQL(", ".join(options[0]))
                    )
                )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                try:
                    self._finish()
                except BaseException as failure:
                    self._rollback()
                    converted = self._failed(failure)
                    if converted is failure:
                        raise
                    raise converted from failure
                self.report.catalog_version = self.import_id
                self._vacuum()
            else:
                self._rollback()
                if isinstance(exc, ImportFailed):
                    exc.report = self.report
                elif isinstance(exc, psycopg.Error):
                    raise self._failed(exc) from exc
        finally:
            self.conn.close()
            self._conn = None
            self.report.seconds = time.perf_counter() - self._started

    def _rollback(self) -> None:
        try:
            self.conn.rollback()
        except psycopg.Error:  # a broken connection: closing it rolls back on the server
            log.warning("rollback of the import failed; closing the connection", exc_info=True)

    def _failed(self, exc: BaseException) -> BaseException:
        """``exc`` as the ImportFailed the caller sees, carrying what was read."""
        if isinstance(exc, psycopg.Error):
            exc = ImportFailed(f"PostgreSQL refused the import: {str(exc).strip()}")
        if isinstance(exc, ImportFailed):
            exc.report = self.report
        return exc

    def stage_ratings(self, rows: Iterable[tuple[str, float | None, int]]) -> None:
        """Hold ``(source_key, rating, votes)`` for the movies added next (last row wins)."""
        with self.conn.cursor().copy(COPY_RATINGS) as copy:
            copy.set_types(RATING_TYPES)
            for key, rating, votes in rows:
                self._seq += 1
                copy.write_row((self._seq, key, rating, votes))
        self._ratings_staged = True
        self._phase("ratings")

    def add_movies(self, records: Iterable[MovieRecord]) -> None:
        """Stream ``records`` into the import (still invisible to searches).

        One COPY for all of them: the server parses rows while Python reads
        and normalizes the next ones. (A COPY per batch made each side wait
        for the other.) New genres and the records' alternate titles follow
        the COPY, since nothing else can run on the connection during it.
        """
        alt_rows: list[tuple[str, str]] = []
        if self._ranked:  # movies after alternate titles: rank again, with these
            self.conn.execute("DROP TABLE import_ranked, import_titles")
            self._ranked = False
        with self.conn.cursor().copy(COPY_MOVIES) as copy:
            copy.set_types(MOVIE_TYPES)
            for batch in batched(records, self.settings.import_batch_size):
                for row in self._movie_rows(batch, alt_rows):
                    copy.write_row(row)
                self.report.movies_written += len(batch)
        if self._genre_bits.added:
            self.conn.cursor().executemany(
                "INSERT INTO genres (bit, name) VALUES (%s, %s)", self._genre_bits.take_added()
            )
        if alt_rows:
            self._copy_alt_titles(alt_rows)
        self._phase("movies")

    def add_alt_titles(self, rows: Iterable[tuple[str, str]]) -> None:
        """Attach ``(source_key, title)`` alternate titles; unknown keys are ignored.

        The movies are in: the server ranks them (which needs no alternate
        title) while Python reads and normalizes the first
        ``ALT_TITLES_WHILE_RANKING`` rows, then the rows go in by COPY. (Movies
        added after this are ranked again with the others at the end; the
        guards look at the final count, at the end.)
        """
        alt_rows = _alt_title_rows(rows)
        early = not self._ranked and self.report.movies_written > 0
        ranking = Overlap(self.conn, self._rank) if early else None
        try:
            staged = list(islice(alt_rows, ALT_TITLES_WHILE_RANKING))
            self._phase("alternate titles")
        except BaseException:  # Ctrl-C or SIGTERM too: the rollback needs the connection
            if ranking is not None:
                ranking.cancel()
            raise
        if ranking is not None:
            ranking.join()
            self._ranked = True
            self._phase("rank")
        self._copy_alt_title_rows(chain(staged, alt_rows))
        self._phase("alternate titles")

    def _copy_alt_titles(self, rows: Iterable[tuple[str, str]]) -> None:
        self._copy_alt_title_rows(_alt_title_rows(rows))

    def _copy_alt_title_rows(self, rows: Iterable[tuple[str, str, str]]) -> None:
        with self.conn.cursor().copy(COPY_ALT_TITLES) as copy:
            copy.set_types(ALT_TITLE_TYPES)
            for row in rows:
                copy.write_row(row)

    def _movie_rows(
        self, batch: list[MovieRecord], alt_rows: list[tuple[str, str]]
    ) -> list[tuple[object, ...]]:
        """COPY rows for ``batch`` (the hot loop: a million calls per million titles)."""
        rated = self._ratings_staged
        genre_columns = self._genre_columns
        seq = self._seq
        rows: list[tuple[object, ...]] = []
        for r in batch:
            seq += 1
            title = r.title
            if "\x00" in title:
                title = title.replace("\x00", "")
            original = r.original_title
            if original is not None:
                original = original.replace("\x00", "")
                if original == title:
                    original = None
            genres = genre_columns.get(r.genres)
            if genres is None:
                genres = genre_columns[r.genres] = (
                    ",".join(r.genres),
                    self._genre_bits.mask(r.genres),
                )
            norm_title = normalize(title)
            rows.append((
                seq, r.source_key, title, original, r.year, r.runtime_min, r.rating, r.votes,
                genres[0], genres[1], r.kind, norm_title, word_key(norm_title),
                title_tsvector(norm_title), rated,
            ))  # fmt: skip
            if r.alt_titles or original is not None:
                alt_rows.extend((r.source_key, t) for t in other_titles(r))
        self._seq = seq
        return rows

    def _vacuum(self) -> None:
        """Set hint bits and the visibility map now, not during the first searches.

        Index-only scans need the visibility map; autovacuum would get there
        eventually (or never, where it is off). The new catalog is already
        committed, so a failure here is logged, not raised.
        """
        conn = self.conn
        try:
            conn.autocommit = True
            conn.execute(
                sql.SQL("VACUUM {}").format(
                    sql.SQL(", ").join(sql.Identifier(t) for t in SWAPPED_TABLES)
                )
            )
        except psycopg.Error:
            log.warning("VACUUM after the import failed", exc_info=True)
        self._phase("vacuum")

    def _phase(self, name: str) -> None:
        """Record how long the step that just ended took (the report's "time:" line)."""
        now = time.perf_counter()
        self.report.phases[name] = self.report.phases.get(name, 0.0) + now - self._phase_started
        self.progress.step_done(name, now - self._phase_started)
        self._phase_started = now


def _alt_title_rows(rows: Iterable[tuple[str, str]]) -> Iterator[tuple[str, str, str]]:
    """COPY rows ``(source_key, title, norm_title)``; NULs dropped (PostgreSQL text has none)."""
    for key, title in rows:
        if "\x00" in title:
            title = title.replace("\x00", "")
            if not title:
                continue
        yield key, title, normalize(title)
