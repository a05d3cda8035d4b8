"""The word index and title postings of a SQLite import, built on the second core while
SQLite builds the catalog's indexes (decision 0038).

Both were built from FTS5's vocabulary once the title index was complete: 8 s of
Python at 1 M titles, after 18 s in which SQLite's C code (CREATE INDEX, the FTS5
build) ran with the GIL released and the second core idle. They only need the
title documents, which are final once the ranks and ``alt_norm_titles`` are: a
thread splits them into words (``search/title_tokens.py``) and builds the word
arrays, the initialisms and the postings from its own vocabulary meanwhile.

FTS5's tokenizer stays the reference: once its index is built, its vocabulary
is read as before and the thread's work is used only if its ``(word, titles)``
rows are exactly FTS5's; else the index is built from FTS5's rows as it always
was (``word_index.py``). Either way the files hold the same bytes.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from typing import Any

from reelsearch.search.columns import ALT_NORM_TITLES, NORM_TITLE, SEARCH_RANK
from reelsearch.search.hit_rows import ALL_ROWS_SQL, encode_hit_rows
from reelsearch.search.postings_store import PostingArrays, number_postings
from reelsearch.search.snapshot import initialisms_of
from reelsearch.search.title_tokens import tokenize_titles
from reelsearch.search.word_arrays import WordArrays
from reelsearch.search.word_store import build_word_arrays, checksum, encode


@dataclass(frozen=True, slots=True)
class PreparedWordIndex:
    """What the thread built: the index's file parts and the postings numbered by it,
    valid only for the vocabulary ``document_counts`` (FTS5's rows, if they agree)."""

    document_counts: list[tuple[str, int]]
    arrays: WordArrays
    parts: list[bytes]
    digest: str
    postings: PostingArrays | None


class WordIndexAhead:
    """Reads the movies' rows now (on the import's connection) and builds from them in a
    thread: the word index and postings from their titles, and the hit rows file.

    ``result()`` and ``hit_rows()`` wait for the thread; each returns None if its part
    failed (the import then builds it the usual way, which raises what must be raised).
    """

    def __init__(self, conn: sqlite3.Connection, version: int) -> None:
        # Every movie's row, in the table's order (TITLES_SQL's: the titles in the order the
        # usual build reads them). Its columns are final too: nothing after the titles
        # changes them (writer.py), so the thread also encodes the hit rows (0042).
        rows = conn.execute(ALL_ROWS_SQL).fetchall()
        self._result: PreparedWordIndex | None = None
        self._hit_rows: list[bytes] | None = None
        # A daemon: an interrupted import exits without waiting for a build it discards.
        self._thread = threading.Thread(
            target=self._build, args=(rows, version), name="word index ahead", daemon=True
        )
        self._thread.start()

    def result(self) -> PreparedWordIndex | None:
        self._thread.join()
        return self._result

    def hit_rows(self) -> list[bytes] | None:
        """The hit rows file's image (``hit_rows.encode_hit_rows``), or None."""
        self._thread.join()
        return self._hit_rows

    def _build(self, rows: list[tuple[Any, ...]], version: int) -> None:
        titles = [(row[SEARCH_RANK], row[NORM_TITLE], row[ALT_NORM_TITLES]) for row in rows]
        try:
            self._result = prepare_word_index(titles, version)
        except Exception:  # noqa: BLE001 - the usual build after FTS5 reports it
            self._result = None
        del titles
        try:
            self._hit_rows = encode_hit_rows(rows, version)
        except Exception:  # noqa: BLE001 - the usual encoding reports it
            self._hit_rows = None


def prepare_word_index(rows: list[tuple[Any, ...]], version: int) -> PreparedWordIndex:
    """The word index and postings of ``rows`` (``TITLES_SQL``'s) for catalog ``version``."""
    tokens = tokenize_titles(rows)
    # The same set INITIALISM_TITLES_SQL's rows give: its LIKE only skips titles
    # in which the letter-run pattern cannot match.
    initialisms = initialisms_of(title for row in rows for title in row[1:] if title)
    document_counts = tokens.document_counts()
    arrays = build_word_arrays(document_counts, initialisms)
    parts = encode(arrays, version)
    digest = checksum(parts)
    postings = number_postings(tokens, arrays, digest)
    return PreparedWordIndex(document_counts, arrays, parts, digest, postings)
