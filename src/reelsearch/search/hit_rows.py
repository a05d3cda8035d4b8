"""Every movie's hit row, stored at import and mapped by every worker: a page's rows
without a statement (docs/decisions/0042-hit-rows-mapped-from-the-catalog.md).

With the title postings (``postings_store.py``) a text search finds and ranks its
titles in memory; the one statement left was the page's rows (``rows_by_rank``:
ten primary-key-like reads of twelve columns, a tenth of a warm search's
instructions). The import now also writes each movie's row (``COLUMNS``, as
that statement returns it) to a file beside the catalog, ``<catalog>.rows-<N>``:

- ``row_offsets`` (int64, one more than the highest rank plus one): rank r's
  row is ``row_bytes[row_offsets[r]:row_offsets[r + 1]]`` (empty: no movie
  held rank r at the import);
- ``row_bytes``: each row as ``marshal`` writes a tuple of ints, floats,
  strings and None, one after another by rank.

``marshal`` loads such a tuple in C, about a quarter of what the statement
costs per row, and unlike pickle it builds values only, calling no code. It
is not meant for bytes from elsewhere: the file is used only when its
checksum is the one the import wrote into the catalog. Its format can change
between Python versions: the header names the version that wrote it and the
columns, and a file written otherwise is not used (the statement reads every
row, logged). The file is never rebuilt: one missing or damaged leaves every
row to the statement until the next import.

The file is named in ``catalog_meta`` (key ``hit_rows``, ``"<name> <xxh3-128>"``)
in the import's transaction and checked against that checksum when mapped, as
the word index and the postings are. A PostgreSQL import stores the same image
in the ``hit_rows`` table, in chunks (decision 0043), and each host copies it
once into the word index's cache directory and maps the copy, as it does the
postings: a page the postings answer then sends the server nothing.

Writes through the documents API after the import are not in it: the movies
their change records name, and the ranks those movies hold now, are read by the
statement (``HitRows.fill`` leaves them out), so a row is never older than the
snapshot it is read with.
"""

from __future__ import annotations

import logging
import marshal
import mmap
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from reelsearch.search.columns import COLUMN_LIST, COLUMNS, KIND, RATING, SEARCH_RANK, VOTES, YEAR
from reelsearch.search.filter_columns import (
    GENRE_MASK_COLUMN,
    FilterColumns,
    current_filter_columns,
    encode_filter_columns,
)
from reelsearch.search.filter_columns import SECTION_TYPES as FILTER_SECTION_TYPES
from reelsearch.search.postings_delta import CHANGED_MOVIES_SQL, CHANGES_FROM_SQL
from reelsearch.search.readers import Reader, Row, SqliteReader, run_inline
from reelsearch.search.stored_words import mapped_host_copy
from reelsearch.search.word_store import (
    WordFileError,
    encode_sections,
    map_checked,
    parse_sections,
)

log = logging.getLogger(__name__)

# The sectioned layout's magic (word_store.encode_sections) names the kind of file;
# FORMAT changes when the sections or the encoding of a row do. Format 1 files (no
# filter columns) are still read: their pages' rows, but filters by statement.
MAGIC = b"RSROWS01"
FORMAT = 2
READ_FORMATS = (1, 2)
SECTION_TYPES = {"row_offsets": "<i8", "row_bytes": "u1", **FILTER_SECTION_TYPES}
HIT_ROWS_KEY = "hit_rows"
HIT_ROWS_SQL = f"SELECT value FROM catalog_meta WHERE key = '{HIT_ROWS_KEY}'"
# A PostgreSQL catalog keeps the file image in the table of that name (migration 0008).
HIT_ROWS_CHUNKS_SQL = f"SELECT data FROM {HIT_ROWS_KEY} WHERE version = ? ORDER BY part"
# The catalog's version and the hit rows file it names, in one read (HitRows.is_current).
LIVE_SQL = (
    "SELECT (SELECT value FROM catalog_meta WHERE key = 'version'), "
    f"(SELECT value FROM catalog_meta WHERE key = '{HIT_ROWS_KEY}')"
)
# Every movie's row, as TextStatements.rows_by_rank reads a page's, then the genre mask
# its filters test (search/filter_columns.py), in the table's order (encode_hit_rows
# orders them by rank; the import's thread reads them so too).
ALL_ROWS_SQL = f"SELECT {COLUMNS}, {GENRE_MASK_COLUMN} FROM movies AS m"
# Where the genre mask follows a row's own columns.
_GENRE_MASK = len(COLUMN_LIST)


def hit_rows_sidecar_name(catalog: Path, version: int) -> str:
    """The file name of a SQLite catalog's hit rows imported as ``version``."""
    return f"{catalog.name}.rows-{version}"


def encode_hit_rows(rows: Iterable[Row], catalog_version: int) -> list[bytes]:
    """The file image of ``rows`` (``ALL_ROWS_SQL``'s, in any order) for ``catalog_version``."""
    blobs: list[bytes] = []
    ranks: list[int] = []
    filtered: list[tuple[Any, ...]] = []
    genre_mask = _GENRE_MASK
    for row in rows:
        blobs.append(marshal.dumps(tuple(row[:genre_mask])))
        ranks.append(int(row[SEARCH_RANK]))
        filtered.append((row[YEAR], row[RATING], row[VOTES], row[KIND], row[genre_mask]))
    rank_of = np.array(ranks, dtype=np.int64)
    size = int(rank_of.max(initial=0)) + 1
    columns = encode_filter_columns(rank_of, filtered, size)
    del filtered
    lengths = np.zeros(size + 1, dtype="<i8")
    lengths[rank_of + 1] = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs))
    order = np.argsort(rank_of, kind="stable").tolist()
    blob = b"".join(blobs[i] for i in order)
    del blobs, order  # a million rows: ~170 MB that the file image need not sit beside
    sections: dict[str, npt.NDArray[Any]] = {
        "row_offsets": np.cumsum(lengths),
        "row_bytes": np.frombuffer(blob, dtype="u1"),
    }
    fields: dict[str, Any] = {
        "format": FORMAT,
        "catalog_version": catalog_version,
        "marshal_version": marshal.version,
        "columns": COLUMNS,
    }
    if columns is not None:  # else more kinds than a byte numbers: filters by statement
        sections.update(columns[0])
        fields["kinds"] = columns[1]
    types = {name: SECTION_TYPES[name] for name in sections}
    return encode_sections(MAGIC, fields, sections, types)


class IncompatibleRows(WordFileError):
    """A hit rows file intact (its checksum is the catalog's) but written for another
    format, ``marshal`` or column list: copying it again would not help."""


# Files refused once, by (directory, reference): not checksummed (nor, on PostgreSQL,
# copied from the database) again at each reload of the snapshot, until the catalog
# names another file or the process restarts.
_REFUSED: set[tuple[str, str]] = set()


class HitRows:
    """The rows stored at an import, less those writes since have changed."""

    __slots__ = (
        "_base", "_changed", "_dirty", "_mapped", "_offsets", "_top", "filter_columns",
        "reference", "stored_filter_columns",
    )  # fmt: skip

    def __init__(
        self,
        reference: str,
        mapped: mmap.mmap,
        offsets: npt.NDArray[np.int64],
        base: int,
        dirty: frozenset[int] = frozenset(),
        changed: frozenset[int] = frozenset(),
        filter_columns: tuple[FilterColumns | None, FilterColumns | None] = (None, None),
    ) -> None:
        self.reference = reference  # catalog_meta's "<name> <checksum>" of the file
        # The columns filters test, by rank, as the file holds them, and with the values
        # now of the movies written since the import (None: the file has none, or too
        # many movies were written): filtered searches in memory.
        self.stored_filter_columns, self.filter_columns = filter_columns
        self._mapped = mapped
        self._offsets = offsets
        self._base = base  # where row_bytes begins in the mapping
        self._top = len(offsets) - 1  # ranks below this one were stored
        self._dirty = dirty  # ranks holding a changed movie now
        self._changed = changed  # ids of the movies changed since the import

    @classmethod
    def map_file(cls, path: Path, reference: str, *, catalog_version: int) -> HitRows:
        """The rows of a stored file, mapped read-only; WordFileError if it must not be used."""
        mapped = map_checked(path, reference.partition(" ")[2])
        header, sections = parse_sections(mapped, path, MAGIC)
        expected = (catalog_version, marshal.version, COLUMNS)
        found = tuple(
            header.get(key) for key in ("format", "catalog_version", "marshal_version", "columns")
        )
        if found[0] not in READ_FORMATS or found[1:] != expected:
            raise IncompatibleRows(f"{path} holds {found}, not {(FORMAT, *expected)}")
        columns = None
        if "kinds" in header and FILTER_SECTION_TYPES.keys() <= sections.keys():
            columns = FilterColumns(
                {name: sections[name] for name in FILTER_SECTION_TYPES}, header["kinds"]
            )
        offsets, base = sections["row_offsets"], header["sections"]["row_bytes"][0]
        return cls(reference, mapped, offsets, base, filter_columns=(columns, columns))

    def with_changes(
        self,
        dirty: Iterable[int],
        changed: Iterable[int],
        filter_columns: FilterColumns | None = None,
    ) -> HitRows:
        """The same mapping, leaving out the ranks ``dirty`` and the movie ids ``changed``;
        ``filter_columns``: the file's with the written movies' values now (None: none)."""
        return HitRows(
            self.reference,
            self._mapped,
            self._offsets,
            self._base,
            frozenset(dirty),
            frozenset(changed),
            (self.stored_filter_columns, filter_columns),
        )

    async def is_current(self, reader: Reader, version: int) -> bool:
        """Whether the catalog ``reader`` reads (in its transaction) is at ``version`` and
        names this file: then these rows, less the changes left out, are its rows. The
        version alone is not enough: another file moved to the catalog's path (a fresh
        import elsewhere) may have the same version and other movies at each rank."""
        found = await reader.row(LIVE_SQL)
        return found is not None and found[0] == str(version) and found[1] == self.reference

    def same_mapping(self, other: HitRows) -> bool:
        """Whether ``other`` reads the very mapping this one does (not a second map)."""
        return self._mapped is other._mapped

    def fill(self, ranks: Sequence[int], known: MutableMapping[int, Row]) -> None:
        """Put the stored row of each of ``ranks`` not in ``known`` into it, if it is
        still the catalog's; the others are left for the statement."""
        offsets, mapped, base, top = self._offsets, self._mapped, self._base, self._top
        dirty, changed, loads = self._dirty, self._changed, marshal.loads
        for rank in ranks:
            if rank in known or rank >= top or rank in dirty:
                continue
            start, end = offsets.item(rank), offsets.item(rank + 1)
            if start == end:
                continue
            row = loads(mapped[base + start : base + end])
            if row[0] not in changed:
                known[rank] = row


def hit_rows_cache_name(version: int, digest: str) -> str:
    """A host's copy of a PostgreSQL catalog's hit rows, beside its postings' copy."""
    return f"v{version}-{digest}.rows"


# Finds the stored rows of the import ``built`` named ``reference`` ("<name> <checksum>").
RowsOf = Callable[[int, str], Awaitable["HitRows | None"]]


def open_sqlite_hit_rows(
    conn: sqlite3.Connection, catalog: Path, previous: HitRows | None = None
) -> HitRows | None:
    """The hit rows of the catalog ``conn`` reads (in the snapshot's read transaction),
    with the writes since the import left out; ``previous``: the last version's, whose
    mapping is kept if it is the same file. None (logged when unexpected): every page
    reads its rows by statement."""

    async def rows_of(built: int, reference: str) -> HitRows | None:
        name = reference.partition(" ")[0]
        path = catalog.parent / Path(name).name  # never outside the catalog's directory
        try:
            return HitRows.map_file(path, reference, catalog_version=built)
        except WordFileError as exc:
            _log_refused(exc)
            return None

    place = (f"catalog {catalog}", str(catalog.parent))
    return run_inline(_open_hit_rows(SqliteReader(conn), place, rows_of, previous))


async def open_postgres_hit_rows(
    reader: Reader, directory: Path, previous: HitRows | None = None
) -> HitRows | None:
    """``open_sqlite_hit_rows`` for a PostgreSQL catalog, read through ``reader`` (in the
    snapshot's transaction): the stored chunks copied once per host into ``directory``."""

    async def rows_of(built: int, reference: str) -> HitRows | None:
        digest = reference.partition(" ")[2]
        path = directory / hit_rows_cache_name(built, digest)

        def mapped() -> HitRows | IncompatibleRows:
            # An intact copy of another format is an answer, not a reason to copy again.
            try:
                return HitRows.map_file(path, reference, catalog_version=built)
            except IncompatibleRows as exc:
                return exc

        found = await mapped_host_copy(
            reader,
            (HIT_ROWS_CHUNKS_SQL, built, digest),
            path,
            mapped,
            ("hit rows", "pages read their rows by statement until the next import"),
        )
        if isinstance(found, IncompatibleRows):
            _log_refused(found)
            return None
        return found  # None: mapped_host_copy logged why

    place = ("the PostgreSQL catalog", str(directory))
    return await _open_hit_rows(reader, place, rows_of, previous)


def _log_refused(reason: WordFileError) -> None:
    log.warning("hit rows not used (%s): pages read their rows by statement until the "
                "next import or a restart", reason)  # fmt: skip


async def _open_hit_rows(
    reader: Reader, place: tuple[str, str], rows_of: RowsOf, previous: HitRows | None
) -> HitRows | None:
    """What both backends do around finding the file (``rows_of``): the catalog's
    reference read and checked, the previous version's mapping kept, a file refused
    once not tried again, the movies written since the import left out. ``place``:
    what the log calls the catalog, and the directory its file or host copy is in."""
    where = place[0]
    row = await reader.row(HIT_ROWS_SQL)
    if row is None or not row[0]:
        log.info("%s names no hit rows: pages read their rows by statement", where)
        return None
    reference = str(row[0])
    built = reference.partition(" ")[0].rpartition("-")[2]
    if not built.isdigit():
        log.warning("hit rows not used: catalog_meta names %r", reference)
        return None
    # First what needs no file: after pruning, no mapping (nor checksum) is made.
    changes_from = await reader.row(CHANGES_FROM_SQL)
    if changes_from is None or int(changes_from[0]) > int(built):
        log.warning("hit rows not used: the change records since the import were pruned")
        return None
    if previous is not None and previous.reference == reference:
        stored = previous
    else:
        refused = (place[1], reference)
        if refused in _REFUSED:
            return None
        mapped = await rows_of(int(built), reference)
        if mapped is None:
            _REFUSED.add(refused)
            return None
        stored = mapped
    # The change records the postings' delta reads too: each changed movie and its rank now.
    changes = await reader.rows(CHANGED_MOVIES_SQL, (int(built),))
    dirty = {int(rank) for _, _, rank in changes if rank is not None}
    # Always from the file's own columns: a reused mapping's values now are redone.
    columns = await current_filter_columns(reader, stored.stored_filter_columns, sorted(dirty))
    return stored.with_changes(dirty, (movie_id for movie_id, _, _ in changes), columns)
