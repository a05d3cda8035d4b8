"""Where a worker finds the word index an import stored: read side of ``word_store``.

The import names the index in ``catalog_meta`` (key ``word_index``, value
``"<file name> <xxh3-128>"``), in the same transaction as the catalog it
describes, so a reader that sees a catalog version also sees which file
belongs to it.

- SQLite: the file lies beside the catalog; a reader maps it if its checksum
  and catalog version match. If it is missing or damaged, the worker builds
  the index in memory (as before this existed), and puts the file back when
  its rebuilt bytes have the checksum the catalog names.
- PostgreSQL: the file's bytes are in the ``word_index`` table; each host
  copies them once into a local cache directory (shared by its workers,
  written atomically) and maps the copy.

Either way a ``None`` answer means "build in memory", and is logged.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

import anyio.to_thread

from reelsearch.search.word_arrays import WordArrays
from reelsearch.search.word_store import (
    WordFileError,
    checksum,
    encode,
    map_word_file,
    write_atomically,
)

if TYPE_CHECKING:
    from reelsearch.search.sql import Reader

WORD_INDEX_KEY = "word_index"
WORD_INDEX_SQL = "SELECT value FROM catalog_meta WHERE key = 'word_index'"
WORD_CHUNKS_SQL = "SELECT data FROM word_index WHERE version = ? ORDER BY part"

logger = logging.getLogger("reelsearch.search")
T = TypeVar("T")

# A host copy no worker has opened for this long is removed when a worker opens another.
# The directory is shared by every PostgreSQL catalog on the host and each import leaves
# a new word index, postings and hit rows copy beside the old ones: without this it only grows.
# A worker still mapping a removed copy keeps reading it (a mapping outlives its
# unlinking); one started later copies it again from the database.
HOST_COPY_IDLE_SECONDS = 7 * 24 * 3600
# What a host copy, or a crashed write of one (``write_atomically``'s temporary), ends with.
_HOST_COPY_ENDINGS = (".words", ".postings", ".rows", ".tmp")


def sidecar_name(catalog: Path, version: int) -> str:
    """The file name of a SQLite catalog's word index for ``version``."""
    return f"{catalog.name}.words-{version}"


def cache_name(version: int, digest: str) -> str:
    """A cached copy's name: the checksum makes copies of different databases distinct."""
    return f"v{version}-{digest}.words"


class StoredWords(Protocol):
    """Finds the stored word index of the catalog a reader sees."""

    async def open(self, reader: Reader, version: int) -> WordArrays | None: ...


async def _stored_reference(reader: Reader, version: int) -> tuple[str, str, int] | None:
    """``(name, checksum, version it was built for)`` of the stored index.

    The index's version is the import's: writes since then bump the catalog
    version but leave the index, and the word overlay holds what they changed
    (catalog/changes.py). Its name ends in that version; ``version`` (the
    catalog's) stands in for a name that does not say.
    """
    row = await reader.row(WORD_INDEX_SQL)
    if row is None or not row[0]:
        return None
    name, _, digest = str(row[0]).partition(" ")
    built = name.rpartition("-")[2]
    return name, digest, int(built) if built.isdigit() else version


class SqliteWordFile:
    """The word index file beside a SQLite catalog (a reader that never suspends)."""

    def __init__(self, catalog: Path) -> None:
        self.catalog = catalog
        self._missing: tuple[Path, str, int] | None = None

    async def open(self, reader: Reader, version: int) -> WordArrays | None:
        reference = await _stored_reference(reader, version)
        if reference is None:
            logger.warning(
                "catalog %s (version %d) names no word index (imported by an older "
                "release?): building it in memory",
                self.catalog,
                version,
            )
            return None
        name, digest, version = reference
        path = self.catalog.parent / Path(name).name  # never outside the catalog's directory
        try:
            return map_word_file(path, catalog_version=version, expected_checksum=digest)
        except WordFileError as exc:
            logger.warning("word index not used (%s): building it in memory", exc)
            self._missing = (path, digest, version)
            return None

    def restore(self, arrays: WordArrays) -> bool:
        """Write the file that was missing or damaged, if ``arrays`` rebuild it exactly."""
        if self._missing is None:
            return False
        path, digest, version = self._missing
        parts = encode(arrays, version)
        if checksum(parts) != digest:
            logger.warning("rebuilt word index differs from the one the catalog names; not stored")
            return False
        try:
            write_atomically(path, parts)
        except OSError as exc:
            logger.warning("cannot put the word index back at %s: %s", path, exc)
            return False
        logger.info("word index rebuilt and stored at %s", path)
        return True


async def mapped_host_copy(
    reader: Reader,
    stored: tuple[str, int, str],
    path: Path,
    map_copy: Callable[[], T],
    names: tuple[str, str],
) -> T | None:
    """A PostgreSQL catalog's image, mapped from this host's copy at ``path``
    (``map_copy``), copied first from its chunks in the database when the host has
    none or a damaged one. ``stored``: the statement reading the chunks, the import's
    version and the image's checksum; ``names``: what the image is and what happens
    without it, for the log. None (logged) when the chunks are missing or damaged, or
    the copy cannot be written."""
    chunks_sql, version, digest = stored
    what, otherwise = names

    def opened() -> T:  # mapped, then marked as opened (one hop to a thread)
        mapped = map_copy()
        mark_opened_and_prune(path)
        return mapped

    try:
        return await anyio.to_thread.run_sync(opened)
    except WordFileError:
        pass  # not copied to this host yet (or damaged): copy it from the database
    parts = [bytes(row[0]) for row in await reader.rows(chunks_sql, (version,))]
    if not parts or checksum(parts) != digest:
        logger.warning(
            "%s of catalog version %d is missing or damaged in the database: %s",
            what,
            version,
            otherwise,
        )
        return None
    try:
        await anyio.to_thread.run_sync(write_atomically, path, parts)
        del parts
        return await anyio.to_thread.run_sync(opened)
    except (OSError, WordFileError) as exc:
        logger.warning("cannot copy the %s to %s (%s): %s", what, path, exc, otherwise)
        return None


def mark_opened_and_prune(
    opened: Path, idle_seconds: float = HOST_COPY_IDLE_SECONDS, now: float | None = None
) -> list[Path]:
    """Mark the host copy ``opened`` as opened now, and remove the copies beside it
    that no worker has opened (nor written) for ``idle_seconds``; the paths removed.

    "Opened" is the access time, set here (not left to the mount's atime rules); the
    modification time stays the copy's write time. Failures are logged, never raised:
    a copy that cannot be removed costs disk, not searches."""
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        written = opened.stat().st_mtime
        os.utime(opened, (now, written))
        candidates = list(opened.parent.iterdir())
    except OSError as exc:
        logger.warning("cannot mark or list the host copies beside %s: %s", opened, exc)
        return removed
    for path in candidates:
        if path == opened or not path.name.endswith(_HOST_COPY_ENDINGS):
            continue
        try:
            seen = path.stat()
            if now - max(seen.st_atime, seen.st_mtime) > idle_seconds:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:
            continue  # another worker removed it first
        except OSError as exc:
            logger.warning("cannot remove the idle host copy %s: %s", path, exc)
    if removed:
        logger.info("removed %d host copies not opened for %d days: %s", len(removed),
                    idle_seconds // 86400, ", ".join(p.name for p in removed))  # fmt: skip
    return removed


class PostgresWordCache:
    """The word index of a PostgreSQL catalog, copied once per host into ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def open(self, reader: Reader, version: int) -> WordArrays | None:
        reference = await _stored_reference(reader, version)
        if reference is None:
            logger.warning("catalog version %d has no stored word index: building it", version)
            return None
        _, digest, version = reference
        path = self.directory / cache_name(version, digest)
        return await mapped_host_copy(
            reader,
            (WORD_CHUNKS_SQL, version, digest),
            path,
            partial(self._map, path, version, digest),
            ("word index", "building it in memory"),
        )

    @staticmethod
    def _map(path: Path, version: int, digest: str) -> WordArrays:
        return map_word_file(path, catalog_version=version, expected_checksum=digest)
