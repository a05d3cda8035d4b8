"""Which file a SQLite catalog path names, and whose write-ahead log lies beside it.

A server keeps its catalog open. If the file is replaced (``mv new.db cat.db``)
the open connections keep reading the old file, and the ``cat.db-wal`` and
``cat.db-shm`` beside the path still belong to the old file: SQLite pairs a
log with a database by name only, so a connection opened on the new file
would replay the old file's log onto it (issue 11 read back the old 58,788
movies from a new 200,000-title file). Before opening the new file, the old
file's log must go.

Device and inode tell the files apart: the old file cannot lose its inode
while the server holds it open, so a different inode at the path is a
different file. The log's own inode, recorded while the old file was open,
tells whether the log beside the path is still the old file's (then it is
removed) or a log the new file already has (another worker process re-opened
first; then it is left alone). Workers take turns with an exclusive lock on
the catalog's folder, so one cannot remove a log that another has just
created for the new file.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# SQLite's names for a WAL-mode database's log and its shared-memory index.
SIDE_FILES = ("-wal", "-shm")


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """A file as the kernel knows it, whatever path names it."""

    device: int
    inode: int


def identity_of(path: str | Path) -> FileIdentity | None:
    """The identity of the file at ``path`` now, or None if there is none."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return FileIdentity(found.st_dev, found.st_ino)


def log_of(path: str | Path) -> Path:
    """The write-ahead log SQLite pairs with the database at ``path``."""
    return Path(f"{path}-wal")


@contextmanager
def reopen_turn(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on the catalog's folder: one process re-opens at a time."""
    folder = os.open(Path(path).parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        yield
    finally:
        os.close(folder)  # releases the lock


def discard_old_log(path: str | Path, old_log: FileIdentity | None) -> bool:
    """Remove the log and index beside ``path`` if the log is ``old_log``; True if removed.

    Call inside :func:`reopen_turn`, after closing every connection to the old file.
    """
    if old_log is None or identity_of(log_of(path)) != old_log:
        return False
    for suffix in SIDE_FILES:
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return True
