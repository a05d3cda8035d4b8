"""The title postings, built in the import that writes a SQLite catalog and stored
beside it (``search/postings_store.py``, docs/decisions/0033-mapped-title-postings.md).

``catalog/word_index.py`` calls in here once the word index is stored, before
the import's COMMIT: the postings are numbered by that index's words and
checked against its counts (FTS5's), so they are written to a file named by
the new version (temp file + rename) and ``catalog_meta`` names it with its
checksum in the same transaction. Titles whose words FTS5 splits otherwise
leave the catalog without postings (logged; searches read FTS5 alone).
PostgreSQL catalogs have none: their engine does not read them.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from reelsearch.search.postings_store import PostingArrays, encode_postings
from reelsearch.search.stored_postings import POSTINGS_KEY, postings_sidecar_name
from reelsearch.search.word_store import checksum, write_atomically

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
    name = postings_sidecar_name(catalog, version)
    write_atomically(catalog.parent / name, parts)
    conn.execute(
        "INSERT INTO catalog_meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (POSTINGS_KEY, f"{name} {checksum(parts)}"),
    )
    return sum(len(part) for part in parts)
