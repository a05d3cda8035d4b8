"""One import = one PostgreSQL transaction that swaps freshly built tables in.

COPY streams what the importer reads into temporary tables. At the end, one
``INSERT ... SELECT`` per table builds staging copies of ``movies``,
``alt_titles``, ``movie_genres`` and ``title_words``: ids kept by source key,
new ids from the identity sequence, popularity ranks computed, rows written
in rank order. The live tables' indexes and constraints are read back from
the catalog and built on the staging copies, which are then analyzed. Only
then does a short ACCESS EXCLUSIVE section drop the live tables and rename
the staging ones (and their indexes, constraints and sequence) into place
(``catalog/postgres_swap.py``).

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
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import partial
from itertools import chain, islice
from types import TracebackType
from typing import Any

import psycopg
from psycopg import sql

from reelsearch.catalog.guards import check_catalog_size
from reelsearch.catalog.postgres_import_sql import (
    ALT_NORM_TITLES,
    ALT_TITLE_TYPES,
    CATALOG_TITLES,
    COPY_ALT_TITLES,
    COPY_MOVIES,
    COPY_RATINGS,
    COPY_TITLE_WORDS,
    DOCUMENTS,
    DROP_EARLIER_DUPLICATES,
    INSERT_ALT_TITLES,
    INSERT_MOVIE_GENRES,
    INSERT_MOVIES,
    KEPT_ALT_TITLES,
    KEPT_MOVIES,
    KEPT_RANKS,
    KEPT_TITLES,
    MOVIE_TYPES,
    NOT_KEPT_ALT_TITLE,
    RANK_MOVIES,
    RATING_TYPES,
    TEMP_TABLES,
)
from reelsearch.catalog.postgres_overlap import Overlap
from reelsearch.catalog.postgres_swap import (
    STAGING,
    SWAPPED_TABLES,
    build_staging_indexes,
    sequence_of,
    swap_in,
)
from reelsearch.catalog.progress import Progress
from reelsearch.catalog.records import GenreBits, ImportReport, MovieRecord
from reelsearch.catalog.schema import upgrade_schema
from reelsearch.catalog.titles import other_titles, split_alt_titles
from reelsearch.catalog.tsvector import indexed_words, title_tsvector
from reelsearch.catalog.word_index import (
    postgres_word_arrays,
    read_initialism_titles,
    store_postgres_word_index,
)
from reelsearch.catalog.writer import batched
from reelsearch.config import Settings
from reelsearch.errors import CatalogError, ImportFailed
from reelsearch.search.normalize import normalize, word_key

log = logging.getLogger(__name__)

# The lexeme at position 1 of every title's tsvector (catalog/tsvector.py).
START_MARKER = "^"

# The tables an import rebuilds, referenced ones first (alt_titles points at movies).
# genres and catalog_meta are updated in place: they are tiny and only grow.
# Statistics target of the title index column: enough most-common words for
# the planner to tell a rare word from a common one.
TITLE_STATISTICS = 1000

# Per-session memory for the import's sorts (ranks, dedup) and index builds.
IMPORT_WORK_MEM = "256MB"
IMPORT_MAINTENANCE_WORK_MEM = "1GB"
# The one sort of whole movie rows (writing them in rank order): about 290 MB
# at 1 M titles, which spilled to disk at 256 MB.
WRITE_MOVIES_WORK_MEM = "1GB"
# B-tree builds sort in this many worker processes besides the import's own
# (PostgreSQL builds GIN indexes in one process until version 18).
IMPORT_INDEX_WORKERS = 2
# Temporary tables hold the streamed rows; local buffers keep them off disk.
IMPORT_TEMP_BUFFERS = "512MB"
# Alternate titles Python reads and holds while the server ranks the movies
# (about 250 bytes each): more than a 1 M-title catalog has, and a bound on
# memory for larger dumps, whose remaining rows stream in once the ranking is done.
ALT_TITLES_WHILE_RANKING = 1_000_000


class PostgresCatalogImport:
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
        except BaseException:
            if ranking is not None:
                ranking.cancel()
            raise
        self._phase("alternate titles")
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

    def _rank(self, conn: psycopg.Connection[Any]) -> None:
        """Ids and ranks of the movies added so far: ``import_ranked`` and ``import_titles``."""
        conn.execute("ANALYZE import_movies, import_ratings")
        conn.execute(DROP_EARLIER_DUPLICATES)
        sequence = sequence_of(conn, "movies")
        last_id, is_called = conn.execute(
            sql.SQL("SELECT last_value, is_called FROM {}").format(sequence)
        ).fetchone() or (1, False)
        next_id = last_id + 1 if is_called else last_id
        conn.execute(
            sql.SQL(RANK_MOVIES).format(
                now=sql.Literal(self._now),
                last_id=sql.Literal(next_id - 1),
                kept=sql.SQL("" if self.replace else KEPT_RANKS),
            )
        )
        (max_id,) = conn.execute("SELECT max(id) FROM import_ranked").fetchone() or (None,)
        if max_id is not None and max_id >= next_id:
            last_id, is_called = max_id, True
        # The new table's identity sequence carries on where the old one stopped.
        conn.execute(
            "SELECT setval(pg_get_serial_sequence('movies_staging', 'id'), %s, %s)",
            (last_id, is_called),
        )
        conn.execute("ANALYZE import_ranked")
        conn.execute(
            sql.SQL(CATALOG_TITLES).format(kept=sql.SQL("" if self.replace else KEPT_TITLES))
        )
        conn.execute("ANALYZE import_titles")

    def _finish(self) -> None:
        conn = self.conn
        if not self._ranked:
            self._rank(conn)
            self._phase("rank")
        self._check_size()
        conn.execute("ANALYZE import_alt_titles")
        if not self.replace:
            conn.execute(KEPT_ALT_TITLES)
        alt_titles = conn.execute(
            sql.SQL(INSERT_ALT_TITLES).format(
                not_kept=sql.SQL("" if self.replace else NOT_KEPT_ALT_TITLE)
            )
        )
        self.report.alt_titles_written = max(alt_titles.rowcount, 0)
        # A new table has no statistics: the join below is planned on real counts.
        conn.execute("ANALYZE alt_titles_staging")
        conn.execute(ALT_NORM_TITLES)
        conn.execute("ANALYZE import_alt_norms")
        self._phase("alternate titles")
        conn.execute(f"SET LOCAL work_mem = '{WRITE_MOVIES_WORK_MEM}'")
        conn.execute(
            sql.SQL(INSERT_MOVIES).format(
                import_id=sql.Literal(self.import_id),
                kept=sql.SQL("" if self.replace else KEPT_MOVIES),
            )
        )
        conn.execute(f"SET LOCAL work_mem = '{IMPORT_WORK_MEM}'")
        # A typo search ORs a dozen spellings; with the default 100 the planner
        # guessed ~2,000 matches for rare words and walked the rank index
        # (300-500 ms at 1 M titles instead of 0.2 ms: bench/RESULTS.md).
        conn.execute(
            f"ALTER TABLE movies_staging ALTER COLUMN title_tsv SET STATISTICS {TITLE_STATISTICS}"
        )
        # The title column's 1000 means a 300,000-row sample; analyzed with it, every
        # other column's statistics were computed over that sample too (4.3 s at
        # 1 M titles). Apart, they take the default target's 30,000 rows (1.5 + 0.5 s).
        conn.execute("ANALYZE movies_staging (title_tsv)")
        conn.execute(
            sql.SQL("ANALYZE movies_staging ({})").format(
                sql.SQL(", ").join(map(sql.Identifier, _other_columns(conn, "movies_staging")))
            )
        )
        self._phase("write movies")
        conn.execute(INSERT_MOVIE_GENRES)
        self._phase("genres")
        # Python counts the title words and builds the word index from the written
        # titles while the server builds the other tables' indexes (15 s at 1 M
        # titles, the GIN index half of it); ts_stat() took 3.4 s of the server's time.
        documents = conn.execute(DOCUMENTS).fetchall()
        initialism_titles = read_initialism_titles(conn, staging=STAGING)
        self._phase("title words")
        indexing = Overlap(conn, partial(build_staging_indexes, tables=SWAPPED_TABLES[:-1]))
        try:
            title_words = _title_words(documents)
            del documents
            self._phase("title words")
            word_arrays = postgres_word_arrays(title_words, initialism_titles)
            self._phase("word index")
        except BaseException:
            indexing.cancel()
            raise
        renames = indexing.join()
        self._phase("indexes")
        with conn.cursor().copy(COPY_TITLE_WORDS) as copy:
            copy.set_types(("text", "int4"))
            for row in title_words:
                copy.write_row(row)
        renames += build_staging_indexes(conn, tables=SWAPPED_TABLES[-1:])
        self._phase("title words")
        # swapped in with the tables
        store_postgres_word_index(conn, self.import_id, word_arrays)
        # The new index holds every word: no overlay, and no change record reaches
        # past this import (every movie may have changed; catalog/changes.py).
        conn.execute("DELETE FROM word_overlay")
        conn.execute("DELETE FROM catalog_changes")
        self._phase("word index")
        conn.execute(
            sql.SQL("ANALYZE {}").format(
                sql.SQL(", ").join(sql.Identifier(t + STAGING) for t in SWAPPED_TABLES[1:])
            )
        )
        conn.cursor().executemany(
            "INSERT INTO catalog_meta (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [
                ("changes_from", str(self.import_id)),
                ("version", str(self.import_id)),
                ("source", self.report.source),
                ("imported_at", self._now),
                *self.report.meta_rows(time.perf_counter() - self._started),
            ],
        )
        self._phase("analyze")
        swap_in(conn, renames, lock_timeout=self.swap_lock_timeout, patience=self.swap_patience)
        self._phase("swap")

    def _check_size(self) -> None:
        """Refuse an empty or much smaller catalog (catalog/guards.py), before the writes."""
        (before,) = self.conn.execute("SELECT count(*) FROM movies").fetchone() or (0,)
        (after,) = self.conn.execute("SELECT count(*) FROM import_ranked").fetchone() or (0,)
        check_catalog_size(
            self.report, before=before, after=after, max_shrink=self.settings.import_max_shrink
        )

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


def _other_columns(conn: psycopg.Connection[Any], table: str) -> list[str]:
    """The columns of ``table`` but ``title_tsv``, in their order."""
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped AND attname <> 'title_tsv' ORDER BY attnum",
        (table,),
    ).fetchall()
    return [name for (name,) in rows]


def _title_words(documents: Iterable[tuple[str, str | None]]) -> list[tuple[str, int]]:
    """``(word, titles holding it)`` for ``(norm_title, alt_norm_titles)`` rows, by word.

    What ts_stat() gives over the tsvectors catalog/tsvector.py writes: the
    words its literal holds, each counted once per title, without the
    start-of-title marker ``'^'`` (a title word ``^`` is the same lexeme).
    """
    counts: Counter[str] = Counter()
    update = counts.update
    for norm_title, alternates in documents:
        update(indexed_words(norm_title, split_alt_titles(alternates)))
    counts.pop(START_MARKER, None)
    return sorted(counts.items())
