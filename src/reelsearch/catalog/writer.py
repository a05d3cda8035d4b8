"""One import = one write transaction on the catalog.

Everything an import writes (movies, ratings, alternate titles, the
popularity ranks and the rebuilt title index) commits together or not at
all. In WAL mode searches keep reading the previous commit meanwhile, so
they see the old catalog or the new one, never half of each.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import groupby, islice
from operator import itemgetter
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import orjson

from reelsearch.catalog.guards import check_catalog_size
from reelsearch.catalog.progress import Progress
from reelsearch.catalog.records import GenreBits, ImportReport, MovieRecord
from reelsearch.catalog.schema import upgrade_schema
from reelsearch.catalog.statistics import refresh_sqlite_statistics
from reelsearch.catalog.titles import joined_alt_titles, other_titles
from reelsearch.catalog.word_index import (
    discard_word_file,
    remove_unfinished_word_files,
    store_sqlite_word_index,
)
from reelsearch.catalog.word_index_ahead import WordIndexAhead
from reelsearch.config import Settings
from reelsearch.db import connect_writer
from reelsearch.errors import ImportFailed
from reelsearch.search.normalize import JOINED_TITLES, normalize, word_key
from reelsearch.search.snapshot import catalog_file

if TYPE_CHECKING:
    from reelsearch.catalog.postgres_writer import PostgresCatalogImport

_UPSERT_MOVIE = """
INSERT INTO movies (source_key, title, original_title, year, runtime_min, rating, votes,
                    genres, genre_mask, kind, norm_title, word_key, import_id, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (source_key) DO UPDATE SET
    updated_at = CASE WHEN (title, original_title, year, runtime_min, rating, votes, genres, kind)
                      IS NOT (excluded.title, excluded.original_title, excluded.year,
                              excluded.runtime_min, excluded.rating, excluded.votes,
                              excluded.genres, excluded.kind)
                 THEN excluded.updated_at ELSE updated_at END,
    title = excluded.title, original_title = excluded.original_title, year = excluded.year,
    runtime_min = excluded.runtime_min, rating = excluded.rating, votes = excluded.votes,
    genres = excluded.genres, genre_mask = excluded.genre_mask, kind = excluded.kind,
    norm_title = excluded.norm_title, word_key = excluded.word_key,
    import_id = excluded.import_id
"""

# Popularity ranks, 1 = most votes. Planned on fresh statistics (refreshed just
# before): on stale ones describing a tiny catalog, SQLite scanned movies once
# per ranked row (tests/catalog/test_import_guards.py holds the plan).
RANK_SQL = """
UPDATE movies SET search_rank = ranked.rn
FROM (SELECT id, row_number() OVER (ORDER BY votes DESC, rating DESC, id) AS rn
      FROM movies) AS ranked
WHERE movies.id = ranked.id
"""

# Segments of one level FTS5 lets pile up before a crisis merge while the title index
# is built (its default: 16). At 1 M titles a build writes about 300: none is merged
# before 'optimize' merges them all once. Not near FTS5's 2,000 segments in all
# (FTS5_MAX_SEGMENT, SQLITE_FULL past it): 10 M titles merge 500 at a time.
_NO_CRISIS = 500

T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class CatalogImport:
    """A context manager around one import transaction.

    ``replace=True`` (the default) makes the catalog exactly what this import
    read: movies from earlier imports that it did not see are removed. Ids of
    movies it did see are kept, so links to ``/v1/movies/{id}`` stay valid.
    """

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
        self._movies_before = 0
        self._started = self._phase_started = time.perf_counter()
        self._now = datetime.now(UTC).isoformat(timespec="seconds")
        self._conn: sqlite3.Connection | None = None
        self._genre_bits = GenreBits(())
        self._secondary_indexes: list[tuple[str, str]] = []
        self._ratings_staged = False
        self.import_id = 0

    @property
    def conn(self) -> sqlite3.Connection:
        assert self._conn is not None, "use CatalogImport as a context manager"
        return self._conn

    def __enter__(self) -> CatalogImport:
        upgrade_schema(self.settings)
        self._conn = connect_writer(self.settings)
        # Index pages of a bulk load are touched in random order: a big cache
        # keeps them in memory instead of re-reading them per row.
        self.conn.execute(f"PRAGMA cache_size=-{int(self.settings.sqlite_import_cache_kib)}")
        # IMMEDIATE takes the write lock now: a second import waits or fails
        # up front instead of after reading a whole file.
        self.conn.execute("BEGIN IMMEDIATE")
        # Left by an import killed between writing its word index and its COMMIT.
        remove_unfinished_word_files(self.conn)
        # Building an index once from sorted data is several times faster than
        # updating it row by row; DDL is transactional, so readers keep theirs.
        self._secondary_indexes = [
            (name, sql)
            for name, sql in self.conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                "AND tbl_name = 'movies' AND name LIKE 'ix_movies_%'"
            )
        ]
        for name, _ in self._secondary_indexes:
            self.conn.execute(f'DROP INDEX "{name}"')
        version = self.conn.execute("SELECT value FROM catalog_meta WHERE key = 'version'")
        self.import_id = int(version.fetchone()[0]) + 1
        self._movies_before = self.conn.execute("SELECT count(*) FROM movies").fetchone()[0]
        self._genre_bits = GenreBits(self.conn.execute("SELECT name, bit FROM genres"))
        if self.replace:
            # Alternate titles are re-read with their movies; ids of movies survive.
            self.conn.execute("DELETE FROM alt_titles")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._ratings_staged:
                self.conn.execute("DROP TABLE IF EXISTS temp.import_ratings")
            if exc_type is None:
                try:
                    self._finish()
                except BaseException as failure:  # a guard refused it, or Ctrl-C: nothing kept
                    self._roll_back()
                    if isinstance(failure, ImportFailed):
                        failure.report = self.report
                    raise
                try:
                    self.conn.execute("COMMIT")
                finally:
                    # Ctrl-C or SIGTERM during the COMMIT is raised once it returns: say
                    # whether it went through, whatever comes next.
                    if not self.conn.in_transaction:
                        self.progress.committed(self.import_id)
                self.report.catalog_version = self.import_id
            else:
                self._roll_back()
                if isinstance(exc, ImportFailed):
                    exc.report = self.report
        finally:
            self.conn.close()
            self._conn = None
            self.report.seconds = time.perf_counter() - self._started

    def _roll_back(self) -> None:
        # The word index file written for this version names a catalog that will not be;
        # removed while the write lock still keeps other imports from writing theirs.
        discard_word_file(self.conn, self.import_id)
        self.conn.execute("ROLLBACK")

    def stage_ratings(self, rows: Iterable[tuple[str, float | None, int]]) -> None:
        """Hold ``(source_key, rating, votes)`` for the movies added next.

        Ratings arrive in their own file; staging them first means each movie
        is written once with its rating, so ``updated_at`` moves only when
        something really changed.
        """
        self.conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS import_ratings "
            "(source_key TEXT PRIMARY KEY, rating REAL, votes INTEGER NOT NULL) WITHOUT ROWID"
        )
        for batch in batched(rows, self.settings.import_batch_size):
            self.conn.executemany(
                "INSERT OR REPLACE INTO import_ratings (source_key, rating, votes) "
                "VALUES (?, ?, ?)",
                batch,
            )
        self._ratings_staged = True
        self._phase("ratings")

    def _apply_staged_ratings(self, batch: list[MovieRecord]) -> None:
        keys = orjson.dumps([record.source_key for record in batch]).decode()
        found = {
            key: (rating, votes)
            for key, rating, votes in self.conn.execute(
                "SELECT r.source_key, r.rating, r.votes FROM json_each(?) AS j "
                "JOIN import_ratings AS r ON r.source_key = j.value",
                (keys,),
            )
        }
        for record in batch:
            record.rating, record.votes = found.get(record.source_key, (None, 0))

    def add_movies(self, records: Iterable[MovieRecord]) -> None:
        """Insert or update ``records`` in batches (still uncommitted)."""
        for batch in batched(records, self.settings.import_batch_size):
            if self._ratings_staged:
                self._apply_staged_ratings(batch)
            self.conn.executemany(_UPSERT_MOVIE, [self._movie_row(r) for r in batch])
            self.report.movies_written += len(batch)
            alt_rows = [(r.source_key, t) for r in batch for t in other_titles(r)]
            if alt_rows:
                self._insert_alt_titles(alt_rows)
        self._phase("movies")

    def add_alt_titles(self, rows: Iterable[tuple[str, str]]) -> None:
        """Attach ``(source_key, title)`` alternate titles; unknown keys are ignored."""
        self._insert_alt_titles(rows)
        self._phase("alternate titles")

    def _insert_alt_titles(self, rows: Iterable[tuple[str, str]]) -> None:
        params = [(title, normalize(title), key) for key, title in rows]
        cursor = self.conn.executemany(
            "INSERT OR IGNORE INTO alt_titles (movie_id, title, norm_title) "
            "SELECT id, ?, ? FROM movies WHERE source_key = ?",
            params,
        )
        self.report.alt_titles_written += max(cursor.rowcount, 0)

    def _movie_row(self, r: MovieRecord) -> tuple[object, ...]:
        norm_title = normalize(r.title)
        return (
            r.source_key,
            r.title,
            r.original_title if r.original_title != r.title else None,
            r.year,
            r.runtime_min,
            r.rating,
            r.votes,
            ",".join(r.genres),
            self._genre_mask(r.genres),
            r.kind,
            norm_title,
            word_key(norm_title),
            self.import_id,
            self._now,
        )

    def _genre_mask(self, genres: tuple[str, ...]) -> int:
        mask = self._genre_bits.mask(genres)
        if self._genre_bits.added:
            self.conn.executemany(
                "INSERT INTO genres (bit, name) VALUES (?, ?)", self._genre_bits.take_added()
            )
        return mask

    def _finish(self) -> None:
        conn = self.conn
        if self.replace:
            conn.execute("DELETE FROM movies WHERE import_id != ?", (self.import_id,))
        after = conn.execute("SELECT count(*) FROM movies").fetchone()[0]
        check_catalog_size(self.report, before=self._movies_before, after=after,
                           max_shrink=self.settings.import_max_shrink)  # fmt: skip
        # The statistics still describe the previous catalog: the ranking join
        # below must be planned for the rows it will meet (catalog/statistics.py).
        refresh_sqlite_statistics(conn, "movies", "alt_titles")
        # Popularity order, most votes first; it becomes the title index's rowid.
        conn.execute("UPDATE movies SET search_rank = NULL")
        self._phase("delete stale")
        conn.execute(RANK_SQL)
        self._phase("rank")
        # Before the indexes (ix_movies_letter_runs reads alt_norm_titles: built once
        # then, not updated row by row) and before the titles are read just below.
        _update_alt_norm_titles(conn)
        self._phase("alternate titles")
        # The title documents are final: the word index is built from them on the
        # second core while SQLite builds the indexes and the title index (0038).
        ahead = WordIndexAhead(conn, self.import_id) if catalog_file(conn) else None
        self._phase("titles read")
        for _, sql in self._secondary_indexes:
            conn.execute(sql)
        self._phase("indexes")
        _rebuild_title_index(conn)
        self._phase("title index")
        # After the two long statements: its Python steps would wait for the GIL
        # the thread holds, and make the thread wait for theirs.
        _write_movie_genres(conn, self._genre_bits.bits.values())
        self._phase("genres")
        store_sqlite_word_index(conn, self.import_id, ahead)  # before COMMIT shows the version
        self._phase("word index")
        # The new index holds every word: no overlay, and no change record reaches
        # past this import (every movie may have changed; catalog/changes.py).
        conn.execute("DELETE FROM word_overlay")
        conn.execute("DELETE FROM catalog_changes")
        conn.executemany(
            "INSERT OR REPLACE INTO catalog_meta (key, value) VALUES (?, ?)",
            [
                ("changes_from", str(self.import_id)),
                ("version", str(self.import_id)),
                ("source", self.report.source),
                ("imported_at", self._now),
                *self.report.meta_rows(time.perf_counter() - self._started),
            ],
        )
        # Fresh planner statistics after a bulk change; sampling keeps it to a second.
        conn.execute("PRAGMA analysis_limit = 1000")
        conn.execute("ANALYZE")
        self._phase("analyze")

    def _phase(self, name: str) -> None:
        """Record how long the step that just ended took (the report's "time:" line)."""
        now = time.perf_counter()
        self.report.phases[name] = self.report.phases.get(name, 0.0) + now - self._phase_started
        self.progress.step_done(name, now - self._phase_started)
        self._phase_started = now


def _update_alt_norm_titles(conn: sqlite3.Connection) -> None:
    """Set ``movies.alt_norm_titles`` from ``alt_titles``, writing only the rows that change."""
    rows = conn.execute(
        "SELECT a.movie_id, m.norm_title, a.norm_title FROM alt_titles AS a "
        "JOIN movies AS m ON m.id = a.movie_id ORDER BY a.movie_id"
    )
    new: dict[int, str | None] = {}
    for movie_id, group in groupby(rows, itemgetter(0)):
        alternates = list(group)
        new[movie_id] = joined_alt_titles(alternates[0][1], [row[2] for row in alternates])
    old = dict(
        conn.execute("SELECT id, alt_norm_titles FROM movies WHERE alt_norm_titles NOT NULL")
    )
    conn.executemany(
        "UPDATE movies SET alt_norm_titles = ? WHERE id = ?",
        [(new.get(i), i) for i in sorted(old.keys() | new.keys()) if old.get(i) != new.get(i)],
    )


def _write_movie_genres(conn: sqlite3.Connection, bits: Iterable[int]) -> None:
    """Fill movie_genres from the masks: per genre, its movies' ranks in order.

    One read of the masks; each genre's ranks are picked out by numpy and
    inserted by one statement from a JSON array, in primary-key order (a join
    on bit tests read movies once per genre; a Python loop over every bit of
    every mask took 3 s of CPU at 1 M titles, this 1.8 s).
    """
    conn.execute("DELETE FROM movie_genres")
    pairs = np.array(
        conn.execute(
            "SELECT search_rank, genre_mask FROM movies WHERE genre_mask != 0 ORDER BY search_rank"
        ).fetchall(),
        dtype=np.int64,
    ).reshape(-1, 2)
    ranks, masks = pairs[:, 0], pairs[:, 1]
    for bit in sorted(bits):
        chosen = ranks[(masks >> bit) & 1 == 1]
        if len(chosen):
            conn.execute(
                "INSERT INTO movie_genres (genre_bit, search_rank) "
                "SELECT ?, value FROM json_each(?)",
                (bit, orjson.dumps(chosen.tolist())),
            )


def _rebuild_title_index(conn: sqlite3.Connection) -> None:
    """Fill title_fts with every movie's title document, rowid = search_rank.

    No merging while the documents go in, and one 'optimize' merges everything
    after: merging segments as they pile up rewrote them several times. Automatic
    merges are off (at 1 M titles: 1.2 s less CPU and half the writes), and so,
    in effect, crisis merges, which still merged every 16 segments of a level
    (1.6 s less CPU, decision 0038). The merged index is the same but for its
    segment's number.
    """
    conn.execute("INSERT INTO title_fts (title_fts) VALUES ('delete-all')")
    conn.execute("INSERT INTO title_fts (title_fts, rank) VALUES ('automerge', 0)")
    conn.execute(f"INSERT INTO title_fts (title_fts, rank) VALUES ('crisismerge', {_NO_CRISIS})")
    conn.execute(
        "INSERT INTO title_fts (rowid, norm_title) "
        "SELECT search_rank, norm_title || coalesce(? || alt_norm_titles, '') FROM movies "
        "ORDER BY search_rank",
        (JOINED_TITLES,),
    )
    conn.execute("INSERT INTO title_fts (title_fts) VALUES ('optimize')")
    # Back to FTS5's defaults for later single-movie writes.
    conn.execute("INSERT INTO title_fts (title_fts, rank) VALUES ('automerge', 4)")
    conn.execute("INSERT INTO title_fts (title_fts, rank) VALUES ('crisismerge', 16)")


def open_import(
    settings: Settings, source: str, *, replace: bool = True, progress: Progress | None = None
) -> CatalogImport | PostgresCatalogImport:
    """The import transaction for the catalog's backend (same API on both)."""
    if settings.backend == "postgresql":
        # Imported here: SQLite users never load psycopg.
        from reelsearch.catalog.postgres_writer import PostgresCatalogImport

        return PostgresCatalogImport(settings, source, replace=replace, progress=progress)
    return CatalogImport(settings, source, replace=replace, progress=progress)
