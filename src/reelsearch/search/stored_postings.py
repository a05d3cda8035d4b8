"""Where a worker finds the title postings an import stored: read side of
``postings_store``, as ``stored_words`` is of the word index.

The import names the file in ``catalog_meta`` (key ``title_postings``, value
``"<file name> <xxh3-128>"``, the name ending in the import's version) in the
transaction that commits the catalog, beside the SQLite catalog like the word
index. A worker maps it if its checksum, format and version match and it is
numbered by the word index the worker maps; then merges the writes since the
import (``postings_delta.py``). A catalog version after writes keeps the
mapping of the one before and reads only the new delta.

Missing or damaged, the file is rebuilt (deterministically, from the titles)
and put back when no write came since the import; otherwise, and for a
catalog that names no postings (imported by an older release: import it
again), the snapshot has none and FTS5 answers alone, which is logged.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from pathlib import Path

from reelsearch.search.postings import NO_DELTA, TitlePostings
from reelsearch.search.postings_delta import read_postings_delta
from reelsearch.search.postings_store import (
    TITLES_SQL,
    PostingArrays,
    build_postings,
    encode_postings,
    map_postings_file,
)
from reelsearch.search.vocabulary import Vocabulary
from reelsearch.search.word_store import WordFileError, checksum, write_atomically

log = logging.getLogger(__name__)

POSTINGS_KEY = "title_postings"
POSTINGS_SQL = "SELECT value FROM catalog_meta WHERE key = 'title_postings'"


def postings_sidecar_name(catalog: Path, version: int) -> str:
    """The file name of a SQLite catalog's title postings imported as ``version``."""
    return f"{catalog.name}.postings-{version}"


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
    row = conn.execute(POSTINGS_SQL).fetchone()
    if row is None or not row[0]:
        log.warning(
            "catalog %s names no title postings (imported by an older release?): searches "
            "read FTS5 only; import it again to have them",
            catalog,
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
        path = catalog.parent / Path(name).name  # never outside the catalog's directory
        words_digest = words_index.partition(" ")[2]
        arrays = _mapped_or_rebuilt(
            conn, path, (int(built), digest, version), vocabulary, words_digest
        )
        if arrays is None:
            return None
        if arrays.words_checksum != words_digest:
            log.warning("title postings not used: %s is numbered by another word index", path)
            return None
        stored = TitlePostings(arrays, vocabulary.lookup)
    postings = read_postings_delta(conn, stored, int(built), overlay)
    return None if postings is None else (reference, postings)


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
