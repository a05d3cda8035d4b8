"""Build the word arrays once, store them in a file, map the file in every worker.

File layout (little-endian):

    8 bytes   magic "RSWORDS1"
    8 bytes   header length H
    H bytes   JSON header: catalog version, typo word count, and per section
              its offset from the file start, element type and count
    ...       the sections of ``search/word_arrays.py``, each 64-byte aligned

The file's xxh3-128 checksum is recorded with the catalog (SQLite's
``catalog_meta``, PostgreSQL's too), so a reader never maps a stale, foreign
or truncated file: it checks the name, the size, the header's catalog
version and the checksum, and builds in memory when any of them disagree.

The build is deterministic (sorted words, fixed hash, stable sorts): the same
catalog always gives the same bytes, so a worker that rebuilds a missing file
can put it back under the checksum the catalog already names.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from xxhash import xxh3_128

from reelsearch.search.typos import typo_keys
from reelsearch.search.word_arrays import SECTION_TYPES, WordArrays, in_memory

MAGIC = b"RSWORDS1"
FORMAT = 2  # 2: delete hashes of search/delete_hashes.py (1 hashed each delete with xxh3)
_ALIGN = 64
_CHUNK = 1 << 22  # bytes read per step while checksumming
_HEADER_SPACE = 4096  # the JSON header is a few hundred bytes


class WordFileError(Exception):
    """A word index file that must not be used: missing, stale, foreign or damaged."""


def build_word_arrays(words: Iterable[tuple[str, int]], initialisms: Iterable[str]) -> WordArrays:
    """The arrays for ``(word, document_count)`` pairs (CPU work: seconds at 1 M titles)."""
    ordered = sorted(words)
    encoded = [word.encode() for word, _ in ordered]
    keys, owners, typo_word_count = typo_keys(ordered)
    return in_memory(
        encoded, [docs for _, docs in ordered], keys, owners, typo_word_count, list(initialisms)
    )


def encode(arrays: WordArrays, catalog_version: int) -> list[bytes]:
    """The file image of ``arrays`` for ``catalog_version``, as parts to write in order."""
    fields = {
        "format": FORMAT,
        "catalog_version": catalog_version,
        "typo_word_count": arrays.typo_word_count,
    }
    return encode_sections(MAGIC, fields, arrays.sections, SECTION_TYPES)


def encode_sections(
    magic: bytes,
    fields: Mapping[str, Any],
    sections: Mapping[str, npt.NDArray[Any]],
    types: Mapping[str, str],
) -> list[bytes]:
    """A sectioned file's image: ``magic``, the JSON header (``fields`` and where each
    section lies), then each of ``types``' sections, 64-byte aligned, as parts."""
    layout: dict[str, list[Any]] = {}
    # Offsets depend on the header's length, which depends on the offsets: the
    # header gets a fixed reserved size, the sections follow it.
    position = _aligned(len(magic) + 8 + _HEADER_SPACE)
    for name, dtype in types.items():
        array = sections[name]
        layout[name] = [position, dtype, len(array)]
        position = _aligned(position + len(array) * np.dtype(dtype).itemsize)
    header = json.dumps({**fields, "sections": layout}, sort_keys=True).encode()
    assert len(header) <= _HEADER_SPACE, "the header outgrew its reserved space"
    parts = [magic, struct.pack("<Q", len(header)), header]
    written = len(magic) + 8 + len(header)
    for name, dtype in types.items():
        start = layout[name][0]
        parts.append(bytes(start - written))
        data = np.ascontiguousarray(sections[name], dtype=dtype).tobytes()
        parts.append(data)
        written = start + len(data)
    return parts


def checksum(parts: Iterable[bytes]) -> str:
    digest = xxh3_128()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()


def file_checksum(path: Path) -> str:
    """xxh3-128 of a file, read (not mapped) so checking does not count as the process's memory."""
    digest = xxh3_128()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomically(path: Path, parts: Iterable[bytes]) -> None:
    """Write ``parts`` to ``path`` so readers see the old file, or none, or all of the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            for part in parts:
                out.write(part)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide it from workers of other users
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def map_word_file(path: Path, *, catalog_version: int, expected_checksum: str) -> WordArrays:
    """The arrays of a stored word index, mapped read-only; WordFileError if it must not be used."""
    return _parse(map_checked(path, expected_checksum), path, catalog_version)


def map_checked(path: Path, expected_checksum: str) -> mmap.mmap:
    """``path`` mapped read-only if its checksum is ``expected_checksum``; else WordFileError."""
    try:
        actual = file_checksum(path)
    except OSError as exc:
        raise WordFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if actual != expected_checksum:
        raise WordFileError(f"{path} has checksum {actual}, the catalog names {expected_checksum}")
    with path.open("rb") as handle:
        return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)


def _parse(mapped: mmap.mmap, path: Path, catalog_version: int) -> WordArrays:
    header, sections = parse_sections(mapped, path, MAGIC)
    if header.get("format") != FORMAT or header.get("catalog_version") != catalog_version:
        raise WordFileError(
            f"{path} holds format {header.get('format')} of catalog version "
            f"{header.get('catalog_version')}, not format {FORMAT} of version {catalog_version}"
        )
    blob_offset = header["sections"]["word_bytes"][0]
    return WordArrays(sections, mapped, blob_offset, int(header["typo_word_count"]))


def parse_sections(
    mapped: mmap.mmap, path: Path, magic: bytes
) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
    """The header and the sections (arrays over the mapping, no copy) of a file
    ``encode_sections`` wrote; WordFileError if it does not begin with ``magic``."""
    if mapped[: len(magic)] != magic:
        raise WordFileError(f"{path} is not a {magic.decode()} file")
    (header_length,) = struct.unpack("<Q", mapped[len(magic) : len(magic) + 8])
    header = json.loads(mapped[len(magic) + 8 : len(magic) + 8 + header_length])
    sections = {
        name: np.frombuffer(mapped, dtype=dtype, count=count, offset=offset)
        for name, (offset, dtype, count) in header["sections"].items()
    }
    return header, sections


def _aligned(position: int) -> int:
    return -(-position // _ALIGN) * _ALIGN
