"""Where a worker finds the title postings an import stored: read side of
``postings_store``, as ``stored_words`` is of the word index.

The import names them in ``catalog_meta`` (key ``title_postings``, value
``"<name> <xxh3-128>"``, the name ending in the import's version) in the
transaction that commits the catalog. A worker maps them if their checksum,
format and version match and they are numbered by the word index the worker
maps; then merges the writes since the import (``postings_delta.py``). A
catalog version after writes keeps the mapping of the one before and reads
only the new delta.

- SQLite: a file beside the catalog, like the word index. Missing or damaged,
  it is rebuilt (deterministically, from the titles) and put back when no
  write came since the import.
- PostgreSQL: the file's bytes are in the ``title_postings`` table; each host
  copies them once into the word index's local cache directory (written
  atomically, named by version and checksum) and maps the copy (0037).

Otherwise, and for a catalog that names no postings (imported by an older
release: import it again), the snapshot has none and the title index (FTS5,
or the tsvector's GIN) answers alone, which is logged.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from pathlib import Path

from reelsearch.search.postings import (
    MAX_PREFIX_POSTINGS,
    NO_DELTA,
    POSTGRES_MAX_PREFIX_POSTINGS,
    TitlePostings,
)
from reelsearch.search.postings_delta import read_postings_delta
from reelsearch.search.postings_store import (
    TITLES_SQL,
    PostingArrays,
    build_postings,
    encode_postings,
    map_postings_file,
)
from reelsearch.search.readers import Reader, SqliteReader, run_inline
from reelsearch.search.stored_words import mapped_host_copy
from reelsearch.search.vocabulary import Vocabulary
from reelsearch.search.word_store import WordFileError, checksum, write_atomically

log = logging.getLogger(__name__)

POSTINGS_KEY = "title_postings"
POSTINGS_SQL = "SELECT value FROM catalog_meta WHERE key = 'title_postings'"
POSTINGS_CHUNKS_SQL = "SELECT data FROM title_postings WHERE version = ? ORDER BY part"

# Finds the stored arrays of the import ``built`` whose file has ``digest``.
ArraysOf = Callable[[int, str, str], Awaitable[PostingArrays | None]]


def postings_sidecar_name(catalog: Path, version: int) -> str:
    """The file name of a SQLite catalog's title postings imported as ``version``."""
    return f"{catalog.name}.postings-{version}"


def postings_cache_name(version: int, digest: str) -> str:
    """A host's copy of a PostgreSQL catalog's postings, beside its word index's copy."""
    return f"v{version}-{digest}.postings"


def open_sqlite_postings(
    conn: sqlite3.Connection,
    catalog: Path,
    *,
    version: int,
    words_index: str | None,
    vocabulary: Vocabulary,
    overlay: Mapping[str, int],
    previous: tuple[str, TitlePostings] | None = None,
) -> tuple[str, TitlePostings] | None:
    """``(reference, postings)`` of the catalog ``conn`` reads (at ``version``), over
    the stored word index ``words_index`` ("<file> <checksum>", None: built in memory)
    that ``vocabulary`` maps, with the writes since the import (``overlay``: its word
    counts); ``previous``: the last version's, whose mapping is kept if it is the same
    file. None: FTS5 answers alone (logged)."""

    async def arrays_of(built: int, name: str, digest: str) -> PostingArrays | None:
        path = catalog.parent / Path(name).name  # never outside the catalog's directory
        words_digest = str(words_index).partition(" ")[2]
        return _mapped_or_rebuilt(conn, path, (built, digest, version), vocabulary, words_digest)

    return run_inline(
        _open_postings(
            SqliteReader(conn),
            f"catalog {catalog}",
            arrays_of,
            words_index=words_index,
            vocabulary=vocabulary,
            overlay=overlay,
            previous=previous,
        )
    )


async def open_postgres_postings(
    reader: Reader,
    directory: Path,
    *,
    words_index: str | None,
    vocabulary: Vocabulary,
    overlay: Mapping[str, int],
    previous: tuple[str, TitlePostings] | None = None,
) -> tuple[str, TitlePostings] | None:
    """``open_sqlite_postings`` for a PostgreSQL catalog, read through ``reader`` (in the
    snapshot's transaction): the stored chunks copied once per host into ``directory``;
    broader prefixes merged than on SQLite (``POSTGRES_MAX_PREFIX_POSTINGS``)."""

    async def arrays_of(built: int, name: str, digest: str) -> PostingArrays | None:
        path = directory / postings_cache_name(built, digest)
        return await mapped_host_copy(
            reader,
            (POSTINGS_CHUNKS_SQL, built, digest),
            path,
            partial(_map, path, built, digest),
            ("title postings", "searches read the title index only until the next import"),
        )

    return await _open_postings(
        reader,
        "the PostgreSQL catalog",
        arrays_of,
        words_index=words_index,
        vocabulary=vocabulary,
        overlay=overlay,
        previous=previous,
        max_prefix_postings=POSTGRES_MAX_PREFIX_POSTINGS,
    )


async def _open_postings(
    reader: Reader,
    where: str,
    arrays_of: ArraysOf,
    *,
    words_index: str | None,
    vocabulary: Vocabulary,
    overlay: Mapping[str, int],
    previous: tuple[str, TitlePostings] | None,
    max_prefix_postings: int = MAX_PREFIX_POSTINGS,
) -> tuple[str, TitlePostings] | None:
    """What both backends do around finding the arrays (``arrays_of``): the catalog's
    reference read and checked, the previous version's mapping kept, the delta merged."""
    row = await reader.row(POSTINGS_SQL)
    if row is None or not row[0]:
        log.warning(
            "%s names no title postings (imported by an older release?): searches "
            "read the title index only; import it again to have them",
            where,
        )
        return None
    reference = str(row[0])
    name, _, digest = reference.partition(" ")
    built = name.rpartition("-")[2]
    if words_index is None or not built.isdigit():
        log.warning("title postings not used: the word index was built in memory")
        return None
    if previous is not None and previous[0] == reference:
        stored = previous[1].with_delta(NO_DELTA)
    else:
        arrays = await arrays_of(int(built), name, digest)
        if arrays is None:
            return None
        if arrays.words_checksum != words_index.partition(" ")[2]:
            log.warning("title postings not used: %s are numbered by another word index", name)
            return None
        stored = TitlePostings(arrays, vocabulary.lookup, max_prefix_postings=max_prefix_postings)
    postings = await read_postings_delta(reader, stored, int(built), overlay)
    return None if postings is None else (reference, postings)


def _map(path: Path, version: int, digest: str) -> PostingArrays:
    return map_postings_file(path, catalog_version=version, expected_checksum=digest)


def _mapped_or_rebuilt(
    conn: sqlite3.Connection,
    path: Path,
    versions: tuple[int, str, int],
    vocabulary: Vocabulary,
    words_digest: str,
) -> PostingArrays | None:
    """The file at ``path`` mapped, or rebuilt, stored and mapped; ``versions``: the
    import's version and the file's checksum as the catalog names them, the catalog's
    version now."""
    built, digest, version = versions
    try:
        return map_postings_file(path, catalog_version=built, expected_checksum=digest)
    except WordFileError as exc:
        if version != built:
            log.warning(
                "title postings not used (%s), and writes since the import changed the "
                "titles they were built from: searches read FTS5 only until the next import",
                exc,
            )
            return None
        log.warning("title postings not used (%s): rebuilding them", exc)
    words = vocabulary.arrays
    arrays = build_postings(conn.execute(TITLES_SQL), words, words_digest)
    if arrays is None:
        return None
    parts = encode_postings(arrays, built)
    if checksum(parts) != digest:
        log.warning("rebuilt title postings differ from those the catalog names; not used")
        return None
    try:
        write_atomically(path, parts)
        return map_postings_file(path, catalog_version=built, expected_checksum=digest)
    except (OSError, WordFileError) as exc:
        log.warning("cannot put the title postings back at %s (%s): not used", path, exc)
        return None
