"""A file image stored in a PostgreSQL table, in chunks, and named in ``catalog_meta``:
how the word index, the title postings and the hit rows of a PostgreSQL catalog are
kept with it (migrations 0004, 0007, 0008).

Each host copies the chunks once into a local cache and maps the copy
(``search/stored_words.py``, ``search/stored_postings.py``, ``search/hit_rows.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reelsearch.search.word_store import checksum

if TYPE_CHECKING:
    import psycopg  # SQLite users never load it

# Rows of the table: under PostgreSQL's 1 GB value limit, and small enough that
# neither side holds two copies of a large image at once.
CHUNK_BYTES = 32 << 20
# The tables that hold images this way (a name is never taken from input).
CHUNK_TABLES = frozenset({"word_index", "title_postings", "hit_rows"})


def store_chunks(conn: psycopg.Connection[Any], table: str, version: int, image: bytes) -> None:
    """Replace the rows of ``table`` with ``image`` as ``version``'s chunks, and name it in
    ``catalog_meta`` under the table's name: ``"<table>-<version> <xxh3-128>"``, what a
    reader checks its host copy against (``search/stored_words.py``). In the caller's
    transaction: the image and the catalog it describes commit together."""
    assert table in CHUNK_TABLES, table
    conn.execute(f"DELETE FROM {table}")
    whole = memoryview(image)  # chunks as views: no second copy of a large image
    with conn.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} (version, part, data) VALUES (%s, %s, %b)",
            (
                (version, part, whole[start : start + CHUNK_BYTES])
                for part, start in enumerate(range(0, len(image), CHUNK_BYTES))
            ),
        )
    conn.execute(
        "INSERT INTO catalog_meta (key, value) VALUES (%s, %s) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (table, f"{table}-{version} {checksum([image])}"),
    )
