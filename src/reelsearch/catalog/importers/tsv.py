"""Streaming readers for the line-oriented files importers read.

IMDb's dumps are gzipped TSV with a header row, ``\\N`` for null and no
quoting at all (titles contain ``"``), so a plain ``split("\\t")`` is both
correct and several times faster than the csv module.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from reelsearch.catalog.progress import ROWS_PER_UPDATE, Progress
from reelsearch.errors import BadFileFormat, ImportFailed

NULL = "\\N"


def open_text(path: Path) -> io.TextIOBase:
    """Open ``path`` as UTF-8 text, gunzipping ``.gz`` files; a clear error if unreadable."""
    try:
        if path.suffix == ".gz":
            return io.TextIOWrapper(
                gzip.open(path, "rb"), encoding="utf-8", errors="strict", newline="\n"
            )
        return open(path, encoding="utf-8", errors="strict", newline="\n")  # noqa: SIM115
    except OSError as exc:
        raise BadFileFormat(f"{path}: cannot open: {exc}") from exc


@contextmanager
def read_errors(name: str) -> Iterator[None]:
    """Reading file ``name`` fails as an import error that names the file and says why."""
    try:
        yield
    except gzip.BadGzipFile as exc:
        raise BadFileFormat(f"{name}: not a gzip file: {exc}") from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise ImportFailed(f"{name}: the file is damaged or truncated: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise BadFileFormat(f"{name}: not UTF-8 text: {exc}") from exc


def stored_position(handle: io.TextIOBase) -> int:
    """How many bytes of the file as stored (compressed, for ``.gz``) ``handle`` has read."""
    binary = handle.buffer  # type: ignore[attr-defined]
    return int(getattr(binary, "fileobj", binary).tell())


def read_tsv(
    path: Path, expected_header: Sequence[str], progress: Progress | None = None
) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, fields)`` after checking the header; fail fast on a wrong file.

    ``progress`` follows the bytes read of the file as stored, so the ETA of
    a gzipped dump is right without knowing its row count.
    """
    progress = progress or Progress()
    with open_text(path) as handle, read_errors(path.name):
        header = handle.readline().rstrip("\n").split("\t")
        if header != list(expected_header):
            raise BadFileFormat(
                f"{path.name}: not the expected format: header is {header[:10]!r}, "
                f"expected {list(expected_header)!r}"
            )
        progress.begin(f"reading {path.name}", total=path.stat().st_size, unit="B")
        for line_number, line in enumerate(handle, start=2):
            if line_number % ROWS_PER_UPDATE == 0:
                progress.update_to(stored_position(handle), note=f"{line_number:,} rows")
            yield line_number, line.rstrip("\n").split("\t")
        progress.end()


def null_or(value: str) -> str | None:
    return None if value == NULL or value == "" else value
