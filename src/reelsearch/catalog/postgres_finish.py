"""The end of a PostgreSQL import: rank, write the staging tables, build their indexes
and the word index, then swap them in (``PostgresCatalogImport``'s last steps).

A mixin of :class:`~reelsearch.catalog.postgres_writer.PostgresCatalogImport`, which
streams the rows in (COPY into temporary tables) and owns the transaction; these are
the statements that turn the streamed rows into the new catalog, in one place.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import psycopg
from psycopg import sql

from reelsearch.catalog.guards import check_catalog_size
from reelsearch.catalog.postgres_import_sql import (
    ALT_DOCUMENTS,
    ALT_NORM_TITLES,
    ALT_TSVECTOR_TYPES,
    ALT_TSVECTORS,
    CATALOG_TITLES,
    COPY_ALT_TSVECTORS,
    COPY_TITLE_WORDS,
    DROP_EARLIER_DUPLICATES,
    INSERT_ALT_TITLES,
    INSERT_MOVIE_GENRES,
    INSERT_MOVIES,
    KEPT_ALT_TITLES,
    KEPT_MOVIES,
    KEPT_RANKS,
    KEPT_TITLES,
    NOT_KEPT_ALT_TITLE,
    RANK_MOVIES,
    STAGED_HIT_ROWS,
)
from reelsearch.catalog.postgres_overlap import Overlap
from reelsearch.catalog.postgres_swap import (
    STAGING,
    SWAPPED_TABLES,
    build_staging_indexes,
    sequence_of,
    swap_in,
)
from reelsearch.catalog.postings_index import store_postgres_hit_rows, store_postgres_postings
from reelsearch.catalog.progress import Progress
from reelsearch.catalog.records import ImportReport
from reelsearch.catalog.tsvector import is_indexable, title_tsvector
from reelsearch.catalog.word_index import (
    postgres_word_arrays,
    read_initialism_titles,
    store_postgres_word_index,
)
from reelsearch.config import Settings
from reelsearch.search.columns import ALT_NORM_TITLES as ALT_NORM_TITLES_COLUMN
from reelsearch.search.columns import NORM_TITLE, SEARCH_RANK
from reelsearch.search.hit_rows import encode_hit_rows
from reelsearch.search.postings_store import number_postings
from reelsearch.search.title_tokens import TitleTokens, tokenize_titles
from reelsearch.search.word_store import checksum, encode

# The lexeme at position 1 of every title's tsvector (catalog/tsvector.py).
START_MARKER = "^"
# Statistics target of the title index column: enough most-common words for
# the planner to tell a rare word from a common one.
TITLE_STATISTICS = 1000
# Per-session memory for the import's sorts (ranks, dedup) and index builds.
IMPORT_WORK_MEM = "256MB"
# The one sort of whole movie rows (writing them in rank order): about 290 MB
# at 1 M titles, which spilled to disk at 256 MB.
WRITE_MOVIES_WORK_MEM = "1GB"


class ImportFinish:
    """Ranking, the staging tables' rows, indexes and statistics, the word index, the swap."""

    # Set by PostgresCatalogImport.
    settings: Settings
    report: ImportReport
    progress: Progress
    replace: bool
    import_id: int
    swap_lock_timeout: float
    swap_patience: float
    _now: str
    _started: float
    _ranked: bool

    @property
    def conn(self) -> psycopg.Connection[Any]:
        raise NotImplementedError

    def _phase(self, name: str) -> None:
        raise NotImplementedError

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
        self._alt_tsvectors_and_genres(conn)
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
        # Python counts the title words and builds the word index from the written
        # titles while the server builds the other tables' indexes (15 s at 1 M
        # titles, the GIN index half of it); ts_stat() took 3.4 s of the server's time.
        # Every movie's hit row (0043), whose rank and titles are the title documents.
        # Binary: the floats as asyncpg reads them for a page, whatever the server's
        # extra_float_digits (the text form may round them).
        rows = conn.cursor(binary=True).execute(STAGED_HIT_ROWS).fetchall()
        documents = [(r[SEARCH_RANK], r[NORM_TITLE], r[ALT_NORM_TITLES_COLUMN]) for r in rows]
        initialism_titles = read_initialism_titles(conn, staging=STAGING)
        self._phase("title words")
        indexing = Overlap(conn, partial(build_staging_indexes, tables=SWAPPED_TABLES[:-1]))
        try:
            # First, so the rows (a million tuples) are freed before the tokens are made.
            hit_rows = b"".join(encode_hit_rows(rows, self.import_id))
            del rows
            self._phase("hit rows")
            # Split once: the title words and the postings are made of the same tokens
            # (splitting twice cost 4.4 s of the 1 M import's 62 s on a slow machine).
            tokens = tokenize_titles(documents)
            del documents
            title_words = _title_words(tokens)
            self._phase("title words")
            word_arrays = postgres_word_arrays(title_words, initialism_titles)
            word_image = encode(word_arrays, self.import_id)
            self._phase("word index")
            # Numbered by the index just built, checked against its counts (0037).
            postings = number_postings(tokens, word_arrays, checksum(word_image))
            del tokens
            self._phase("title postings")
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
        store_postgres_word_index(conn, self.import_id, word_arrays, word_image)
        del word_image
        self._phase("word index")
        store_postgres_postings(conn, self.import_id, postings)
        del postings
        self._phase("title postings")
        store_postgres_hit_rows(conn, self.import_id, hit_rows)
        del hit_rows
        self._phase("hit rows")
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
        try:
            swap_in(conn, renames, lock_timeout=self.swap_lock_timeout, patience=self.swap_patience)
        finally:
            # Ctrl-C or SIGTERM during the COMMIT: psycopg waits for its answer, then
            # raises. Idle means committed (a failed swap leaves the transaction open).
            if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                self.progress.committed(self.import_id)
        self._phase("swap")

    def _alt_tsvectors_and_genres(self, conn: psycopg.Connection[Any]) -> None:
        """``import_alt_tsv``: the tsvector of each movie with alternates, written by
        Python (``title_tsvector``) while the server fills ``movie_genres_staging``,
        which needs only the ranks."""
        documents = conn.execute(ALT_DOCUMENTS).fetchall()
        self._phase("alternate titles")
        genres = Overlap(conn, _insert_genres)
        try:
            # The alternates as one string: joined to the title as concat_ws() joins them.
            rows = [(id_, title_tsvector(norm, (alts,))) for id_, norm, alts in documents]
            del documents
        except BaseException:
            genres.cancel()
            raise
        genres.join()
        self._phase("genres")
        conn.execute(ALT_TSVECTORS)
        with conn.cursor().copy(COPY_ALT_TSVECTORS) as copy:
            copy.set_types(ALT_TSVECTOR_TYPES)
            for row in rows:
                copy.write_row(row)
        conn.execute("ANALYZE import_alt_tsv")
        self._phase("alternate titles")

    def _check_size(self) -> None:
        """Refuse an empty or much smaller catalog (catalog/guards.py), before the writes."""
        (before,) = self.conn.execute("SELECT count(*) FROM movies").fetchone() or (0,)
        (after,) = self.conn.execute("SELECT count(*) FROM import_ranked").fetchone() or (0,)
        check_catalog_size(
            self.report, before=before, after=after, max_shrink=self.settings.import_max_shrink
        )


def _insert_genres(conn: psycopg.Connection[Any]) -> None:
    conn.execute(INSERT_MOVIE_GENRES)


def _other_columns(conn: psycopg.Connection[Any], table: str) -> list[str]:
    """The columns of ``table`` but ``title_tsv``, in their order."""
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped AND attname <> 'title_tsv' ORDER BY attnum",
        (table,),
    ).fetchall()
    return [name for (name,) in rows]


def _title_words(tokens: TitleTokens) -> list[tuple[str, int]]:
    """``(word, titles holding it)`` of the split title documents, by word.

    What ts_stat() gives over the tsvectors catalog/tsvector.py writes: each word
    counted once per title, without the words a tsvector cannot hold (longer than a
    lexeme may be) and without the start-of-title marker ``'^'`` (a title word ``^``
    is the same lexeme).
    """
    return [
        (word, count)
        for word, count in tokens.document_counts()
        if word != START_MARKER and is_indexable(word)
    ]
