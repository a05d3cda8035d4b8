"""The word index, built in the import that writes the catalog and stored with it.

Workers map the stored index instead of rebuilding it at start
(docs/decisions/0008-word-index-at-import.md). Both writers call in here
once the new catalog's title index is complete and before their COMMIT:

- SQLite: the index goes to a file beside the catalog named by the new
  version, written atomically (temp file + rename) before the commit that
  makes the version visible; ``catalog_meta`` names it with its checksum.
  Files of versions before the previous one are removed (a worker may still
  be mapping the previous one; a mapped file outlives its unlinking anyway).
- PostgreSQL: the file's bytes go into the ``word_index`` table in the swap
  transaction; each host copies them once (``search/stored_words.py``).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reelsearch.catalog.postings_index import store_sqlite_hit_rows, store_sqlite_postings
from reelsearch.catalog.stored_chunks import store_chunks
from reelsearch.search.hit_rows import HIT_ROWS_KEY, hit_rows_sidecar_name
from reelsearch.search.postings_store import TITLES_SQL, build_postings
from reelsearch.search.snapshot import INITIALISM_TITLES_SQL, catalog_file, initialisms_of
from reelsearch.search.sql import SQLITE
from reelsearch.search.stored_postings import POSTINGS_KEY, postings_sidecar_name
from reelsearch.search.stored_words import WORD_INDEX_KEY, sidecar_name
from reelsearch.search.word_arrays import WordArrays
from reelsearch.search.word_store import build_word_arrays, checksum, encode, write_atomically

if TYPE_CHECKING:
    import psycopg  # SQLite users never load it

    from reelsearch.catalog.word_index_ahead import WordIndexAhead

log = logging.getLogger(__name__)

# The files an import writes beside a SQLite catalog, each named by its version.
_SIDECARS = (sidecar_name, postings_sidecar_name, hit_rows_sidecar_name)

_UPSERT_META = (
    "INSERT INTO catalog_meta (key, value) VALUES ({0}, {0}) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


def store_sqlite_word_index(
    conn: sqlite3.Connection, version: int, ahead: WordIndexAhead | None = None
) -> int:
    """Build the index of the catalog ``conn`` is writing and store it as ``version``'s file,
    with the title postings numbered by it (``catalog/postings_index.py``).

    ``ahead``: the same built in a thread from the titles (``word_index_ahead.py``),
    used if its vocabulary is FTS5's. Returns the files' size in bytes (0 for a
    catalog in memory: nowhere to put it).
    """
    catalog = catalog_file(conn)
    if catalog is None:
        return 0
    document_counts = conn.execute(SQLITE.vocabulary_sql).fetchall()
    prepared = ahead.result() if ahead is not None else None
    if prepared is not None and prepared.document_counts == document_counts:
        arrays, parts, digest = prepared.arrays, prepared.parts, prepared.digest
        postings = prepared.postings
    else:
        arrays = build_word_arrays(
            document_counts,
            initialisms_of(t for row in conn.execute(INITIALISM_TITLES_SQL) for t in row if t),
        )
        parts = encode(arrays, version)
        digest = checksum(parts)
        postings = build_postings(conn.execute(TITLES_SQL), arrays, digest)
    name = sidecar_name(catalog, version)
    write_atomically(catalog.parent / name, parts)
    # The files workers may still be mapping: those named now, whatever version made them
    # (writes since an import bump the catalog version, not the index's: 0014).
    previous = conn.execute(
        "SELECT value FROM catalog_meta WHERE key IN (?, ?, ?)",
        (WORD_INDEX_KEY, POSTINGS_KEY, HIT_ROWS_KEY),
    )
    kept = {name, *(str(row[0]).partition(" ")[0] for row in previous)}
    conn.execute(_UPSERT_META.format("?"), (WORD_INDEX_KEY, f"{name} {digest}"))
    # The title postings are numbered by this index's words: stored with it (0033).
    postings_size = store_sqlite_postings(conn, catalog, version, postings)
    # And the page's rows, so a search on the postings reads no statement (0042).
    rows_size = store_sqlite_hit_rows(
        conn, catalog, version, ahead.hit_rows() if ahead is not None else None
    )
    kept.update(name_of(catalog, version) for name_of in _SIDECARS)
    for prefix in _sidecar_prefixes(catalog):
        _remove_older_files(catalog, version, kept, prefix)
    return sum(len(part) for part in parts) + postings_size + rows_size


def remove_unfinished_word_files(conn: sqlite3.Connection) -> list[Path]:
    """Remove the word index, title postings and hit rows files of imports that never
    committed; return their paths.

    An import writes its files (``<db>.words-N``, ``<db>.postings-N``, ``<db>.rows-N``,
    each through a ``.<name>.*.tmp`` temporary) before its COMMIT; killed in between,
    they stay, named by nothing: up to 270 MB at 1 M titles. Any file numbered past the index the
    catalog names is such a one (an import that committed would be named).
    Called by an import holding the write lock: no other import is writing one.
    A worker putting back the named file (``SqliteWordFile.restore``) writes
    that number, which is kept.
    """
    catalog = catalog_file(conn)
    if catalog is None:
        return []
    named = conn.execute("SELECT value FROM catalog_meta WHERE key = ?", (WORD_INDEX_KEY,))
    row = named.fetchone()
    last = _file_number(catalog, str(row[0]).partition(" ")[0]) if row else None
    if last is None:  # no index named (nothing imported yet, or an older release's)
        last = int(
            conn.execute("SELECT value FROM catalog_meta WHERE key = 'version'").fetchone()[0]
        )
    removed = []
    for path in catalog.parent.iterdir():
        number = _file_number(catalog, path.name)
        if number is not None and number > last:
            try:
                path.unlink()
            except OSError as exc:
                log.warning("cannot remove unfinished word index %s: %s", path, exc)
            else:
                removed.append(path)
    return removed


def discard_word_file(conn: sqlite3.Connection, version: int) -> None:
    """Remove ``version``'s word index, title postings and hit rows files, written by an import
    that is rolling back."""
    catalog = catalog_file(conn)
    if catalog is None:
        return
    for name in (name_of(catalog, version) for name_of in _SIDECARS):
        try:
            (catalog.parent / name).unlink(missing_ok=True)
        except OSError as exc:  # the next import removes it (remove_unfinished_word_files)
            log.warning("cannot remove the rolled back import's %s: %s", name, exc)


def _file_number(catalog: Path, name: str) -> int | None:
    """N of ``<db>.words-N``, ``<db>.postings-N`` or ``<db>.rows-N``, or of its
    temporary ``.<that name>.<random>.tmp``; else None."""
    for prefix in _sidecar_prefixes(catalog):
        if name.startswith("." + prefix) and name.endswith(".tmp"):
            name = name[1:].partition(".tmp")[0].rpartition(".")[0]
        number = name.removeprefix(prefix)
        if name.startswith(prefix) and number.isdigit():
            return int(number)
    return None


def store_postgres_word_index(
    conn: psycopg.Connection[Any],
    version: int,
    arrays: WordArrays | None = None,
    parts: list[bytes] | None = None,
) -> int:
    """Write the index of the staged catalog into ``word_index`` as ``version``.

    ``arrays``: the index, if the caller built it (``postgres_word_arrays``);
    else it is built here. ``parts``: its image (``encode(arrays, version)``),
    if the caller made it to number the title postings by its checksum. Runs in
    the import's transaction before the swap: the index and the tables it
    describes become visible in the same commit. Returns its size in bytes.
    """
    if arrays is None:
        arrays = build_postgres_word_arrays(conn, staging="_staging")
    image = b"".join(parts if parts is not None else encode(arrays, version))
    store_chunks(conn, WORD_INDEX_KEY, version, image)  # named in catalog_meta as the table
    return len(image)


def build_postgres_word_arrays(conn: psycopg.Connection[Any], *, staging: str = "") -> WordArrays:
    """The word arrays of a PostgreSQL catalog (``staging``: the suffix of the tables read)."""
    words = conn.execute(f"SELECT word, docs FROM title_words{staging}").fetchall()
    return postgres_word_arrays(words, read_initialism_titles(conn, staging=staging))


def read_initialism_titles(
    conn: psycopg.Connection[Any], *, staging: str = ""
) -> list[tuple[Any, ...]]:
    """The ``(norm_title, alt_norm_titles)`` rows the initialisms are taken from.

    Read apart from ``postgres_word_arrays`` so the import can build the
    arrays in Python while its connection builds the indexes.
    """
    return conn.execute(
        INITIALISM_TITLES_SQL.replace("FROM movies", f"FROM movies{staging}")
    ).fetchall()


def postgres_word_arrays(
    words: Iterable[tuple[str, int]], initialism_titles: list[tuple[Any, ...]]
) -> WordArrays:
    """The word arrays of ``(word, docs)`` rows and ``read_initialism_titles``' rows."""
    return build_word_arrays(
        words, initialisms_of(t for row in initialism_titles for t in row if t)
    )


def _sidecar_prefixes(catalog: Path) -> list[str]:
    """``<db>.words-``, ``<db>.postings-``, ``<db>.rows-``: the names less the version."""
    return [name_of(catalog, 0).removesuffix("0") for name_of in _SIDECARS]


def _remove_older_files(catalog: Path, version: int, kept: set[str], prefix: str) -> None:
    """Files ``prefix``<version> (as the ``_SIDECARS`` name them) of versions before
    ``version - 1`` but those in ``kept``: no reader can be about to open them."""
    for path in catalog.parent.glob(f"{prefix}*"):
        number = path.name.removeprefix(prefix)
        if number.isdigit() and int(number) < version - 1 and path.name not in kept:
            try:
                path.unlink()
            except OSError as exc:
                log.warning("cannot remove old index file %s: %s", path, exc)
