"""A file image stored in a PostgreSQL table, in chunks: how the word index and the
title postings of a PostgreSQL catalog are kept with it (migrations 0004, 0007).

Each host copies the chunks once into a local cache and maps the copy
(``search/stored_words.py``, ``search/stored_postings.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg  # SQLite users never load it

# Rows of the table: under PostgreSQL's 1 GB value limit, and small enough that
# neither side holds two copies of a large image at once.
CHUNK_BYTES = 32 << 20
# The tables that hold images this way (a name is never taken from input).
CHUNK_TABLES = frozenset({"word_index", "title_postings"})


def store_chunks(conn: psycopg.Connection[Any], table: str, version: int, image: bytes) -> None:
    """Replace the rows of ``table`` with ``image`` as ``version``'s chunks."""
    assert table in CHUNK_TABLES, table
    conn.execute(f"DELETE FROM {table}")
    with conn.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} (version, part, data) VALUES (%s, %s, %b)",
            [
                (version, part, image[start : start + CHUNK_BYTES])
                for part, start in enumerate(range(0, len(image), CHUNK_BYTES))
            ],
        )
