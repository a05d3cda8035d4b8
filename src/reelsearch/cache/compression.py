"""The content codings reelsearch speaks: whole bodies once per cached entry, streams on the fly.

Levels are chosen for answers computed once and served many times, yet cheap
enough on a miss: gzip 6, brotli 5 and zstd 3 each take tens of microseconds
on a search page of a few kB, where brotli 11 would take milliseconds.
gzip is written with mtime 0 so one body gives the same bytes in every process.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Protocol

import brotli
import zstandard

GZIP_LEVEL = 6
BROTLI_QUALITY = 5
ZSTD_LEVEL = 3
# Preference when the client ranks several codings equally: smallest output first.
ENCODINGS = ("zstd", "br", "gzip")
_GZIP_WBITS = 31  # zlib's wbits for a gzip wrapper (header with mtime 0)


def _gzip(body: bytes) -> bytes:
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
    return compressor.compress(body) + compressor.flush()


def _brotli(body: bytes) -> bytes:
    return bytes(brotli.compress(body, quality=BROTLI_QUALITY))


def _zstd(body: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(body)


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {"gzip": _gzip, "br": _brotli, "zstd": _zstd}


class StreamCompressor(Protocol):
    """Compresses a body written in pieces: ``sync`` emits what is buffered, ``finish`` ends."""

    def compress(self, data: bytes) -> bytes: ...

    def sync(self) -> bytes: ...

    def finish(self) -> bytes: ...


class _BrotliStream:
    def __init__(self) -> None:
        self._compressor = brotli.Compressor(quality=BROTLI_QUALITY)

    def compress(self, data: bytes) -> bytes:
        return bytes(self._compressor.process(data))

    def sync(self) -> bytes:
        return bytes(self._compressor.flush())

    def finish(self) -> bytes:
        return bytes(self._compressor.finish())


class _ZstdStream:
    def __init__(self) -> None:
        self._compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compressobj()

    def compress(self, data: bytes) -> bytes:
        return self._compressor.compress(data)

    def sync(self) -> bytes:
        return self._compressor.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)

    def finish(self) -> bytes:
        return self._compressor.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)


class _GzipStream:
    def __init__(self) -> None:
        self._compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)

    def compress(self, data: bytes) -> bytes:
        return self._compressor.compress(data)

    def sync(self) -> bytes:
        return self._compressor.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        return self._compressor.flush(zlib.Z_FINISH)


def stream_compressor(encoding: str) -> StreamCompressor:
    """A compressor for a streamed body in ``encoding`` (one of ``ENCODINGS``)."""
    streams: dict[str, Callable[[], StreamCompressor]] = {
        "gzip": _GzipStream, "br": _BrotliStream, "zstd": _ZstdStream,
    }  # fmt: skip
    return streams[encoding]()
