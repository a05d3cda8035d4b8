"""The title postings, built in the import that writes a catalog and stored with it
(``search/postings_store.py``, docs/decisions/0033-mapped-title-postings.md, 0037).

- SQLite: ``catalog/word_index.py`` calls in here once the word index is
  stored, before the import's COMMIT: the postings are numbered by that
  index's words and checked against its counts (FTS5's), so they are written
  to a file named by the new version (temp file + rename) and ``catalog_meta``
  names it with its checksum in the same transaction.
- PostgreSQL: the import builds them from the staged titles while the server
  builds the indexes (``catalog/postgres_finish.py``), numbered by the word
  index it built and checked against its counts (``title_words``, what the
  tsvectors hold); the file image goes into the ``title_postings`` table in
  chunks in the swap transaction, named in ``catalog_meta`` the same way.

Titles whose words the title index splits otherwise leave the catalog without
postings (logged; searches read the title index alone).

Every movie's hit row (``search/hit_rows.py``) is stored the same way: in a file of
its own beside a SQLite catalog (``store_sqlite_hit_rows``, decision 0042), in the
``hit_rows`` table of a PostgreSQL one (``store_postgres_hit_rows``, 0043).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reelsearch.catalog.stored_chunks import store_chunks
from reelsearch.search.hit_rows import (
    ALL_ROWS_SQL,
    HIT_ROWS_KEY,
    encode_hit_rows,
    hit_rows_sidecar_name,
)
from reelsearch.search.postings_store import PostingArrays, encode_postings
from reelsearch.search.stored_postings import POSTINGS_KEY, postings_sidecar_name
from reelsearch.search.word_store import checksum, write_atomically

if TYPE_CHECKING:
    import psycopg  # SQLite users never load it

log = logging.getLogger(__name__)


def store_sqlite_postings(
    conn: sqlite3.Connection, catalog: Path, version: int, postings: PostingArrays | None
) -> int:
    """Store ``postings`` (``build_postings`` of the catalog ``conn`` is writing, numbered by
    the word index just stored; None: refused) as ``version``'s file. Returns the file's
    size in bytes (0: not stored)."""
    if postings is None:
        conn.execute("DELETE FROM catalog_meta WHERE key = ?", (POSTINGS_KEY,))
        return 0
    parts = encode_postings(postings, version)
    return _store_sidecar(
        conn, catalog, POSTINGS_KEY, postings_sidecar_name(catalog, version), parts
    )


def store_sqlite_hit_rows(
    conn: sqlite3.Connection, catalog: Path, version: int, parts: list[bytes] | None = None
) -> int:
    """Store every movie's hit row of the catalog ``conn`` is writing as ``version``'s
    file, named in ``catalog_meta`` in the import's transaction. ``parts``: the file's
    image if the import encoded it already (on its second core, ``word_index_ahead``).
    Returns its size."""
    if parts is None:
        parts = encode_hit_rows(conn.execute(ALL_ROWS_SQL), version)
    return _store_sidecar(
        conn, catalog, HIT_ROWS_KEY, hit_rows_sidecar_name(catalog, version), parts
    )


def _store_sidecar(
    conn: sqlite3.Connection, catalog: Path, key: str, name: str, parts: list[bytes]
) -> int:
    """Write ``parts`` beside ``catalog`` as ``name`` (atomically), and name it with its
    checksum under ``key`` in ``catalog_meta``, in the import's transaction. Returns its
    size in bytes."""
    write_atomically(catalog.parent / name, parts)
    conn.execute(
        "INSERT INTO catalog_meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, f"{name} {checksum(parts)}"),
    )
    return sum(len(part) for part in parts)


def store_postgres_postings(
    conn: psycopg.Connection[Any], version: int, postings: PostingArrays | None
) -> int:
    """Store the postings the import built for the staged catalog (None: the build
    refused, and the catalog will have none) as ``version``'s, in its transaction.
    Returns their size in bytes (0: not stored)."""
    if postings is None:
        conn.execute("DELETE FROM title_postings")
        conn.execute("DELETE FROM catalog_meta WHERE key = %s", (POSTINGS_KEY,))
        return 0
    parts = encode_postings(postings, version)
    image = b"".join(parts)
    del parts
    store_chunks(conn, POSTINGS_KEY, version, image)  # named in catalog_meta as the table
    return len(image)


def store_postgres_hit_rows(conn: psycopg.Connection[Any], version: int, image: bytes) -> int:
    """Store the hit rows the import encoded for the staged catalog (``encode_hit_rows``'s
    file image, joined) as ``version``'s, in its transaction. Returns their size in bytes."""
    store_chunks(conn, HIT_ROWS_KEY, version, image)  # named in catalog_meta as the table
    return len(image)
