"""What importers produce and what an import reports."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from reelsearch.errors import CatalogError, ImportFailed

# genre_mask is a signed 64-bit integer; bit 63 would make it negative.
MAX_GENRES = 63

# Catalogs like ggplot2movies and MovieLens file "The Matrix" as "Matrix, The".
_TRAILING_ARTICLE = re.compile(
    r"^(?P<rest>.+), (?P<article>The|A|An|Les|La|Le|L'|Il|Lo|Gli|I|Das|Der|Die|Den|Det|De|"
    r"Het|El|Los|Las|Un|Une|Una|Ein|Eine|O|Os|As)$"
)


def article_first(title: str) -> str:
    """``"Matrix, The"`` -> ``"The Matrix"``; titles without a trailing article are kept."""
    match = _TRAILING_ARTICLE.match(title)
    if match is None:
        return title
    article = match["article"]
    separator = "" if article.endswith("'") else " "
    return f"{article}{separator}{match['rest']}"


class GenreBits:
    """Which bit of ``genre_mask`` stands for which genre; a new genre takes the next bit.

    ``added`` lists the genres given a bit since the last ``take_added``, for
    the writer to store in the ``genres`` table.
    """

    def __init__(
        self, known: Iterable[tuple[str, int]], *, error: type[CatalogError] = ImportFailed
    ) -> None:
        self.bits = dict(known)
        self.added: list[tuple[int, str]] = []
        self._error = error

    def mask(self, genres: Iterable[str]) -> int:
        mask = 0
        for name in genres:
            bit = self.bits.get(name)
            if bit is None:
                bit = max(self.bits.values(), default=-1) + 1
                if bit >= MAX_GENRES:
                    raise self._error(f"more than {MAX_GENRES} distinct genres; {name!r} is one")
                self.bits[name] = bit
                self.added.append((bit, name))
            mask |= 1 << bit
        return mask

    def take_added(self) -> list[tuple[int, str]]:
        added, self.added = self.added, []
        return added


@dataclass(slots=True)
class MovieRecord:
    """One movie as an importer read it, before it has a catalog id."""

    source_key: str
    title: str
    year: int | None = None
    runtime_min: int | None = None
    rating: float | None = None
    votes: int = 0
    genres: tuple[str, ...] = ()
    kind: str = "movie"
    original_title: str | None = None
    alt_titles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that was skipped, where it was and why."""

    file: str
    line: int
    reason: str


# Enough examples to see the pattern without flooding the terminal.
MAX_BAD_ROW_SAMPLES = 50


@dataclass(slots=True)
class ImportReport:
    """What an import did: counts, skipped rows, time and the new catalog version."""

    source: str
    rows_read: int = 0
    movies_written: int = 0
    alt_titles_written: int = 0
    bad_rows: int = 0
    bad_row_samples: list[BadRow] = field(default_factory=list)
    seconds: float = 0.0
    catalog_version: int | None = None
    phases: dict[str, float] = field(default_factory=dict)  # step -> seconds

    def meta_rows(self, seconds: float) -> list[tuple[str, str]]:
        """``catalog_meta`` rows that let the server report this import (its metrics):
        the time it took until now (its last step), rows read and bad rows."""
        return [
            ("import_seconds", f"{seconds:.3f}"),
            ("import_rows_read", str(self.rows_read)),
            ("import_bad_rows", str(self.bad_rows)),
        ]

    def add_bad_row(self, file: str, line: int, reason: str) -> None:
        self.bad_rows += 1
        if len(self.bad_row_samples) < MAX_BAD_ROW_SAMPLES:
            self.bad_row_samples.append(BadRow(file, line, reason))

    def render(self) -> str:
        """A human summary for the command line."""
        if self.catalog_version is None:
            lines = [
                f"nothing imported from {self.source}: {self.rows_read:,} rows read "
                f"({self.bad_rows:,} bad) before the failure, in {self.seconds:.1f} s"
            ]
        else:
            lines = [
                f"imported {self.source}: {self.movies_written:,} movies "
                f"({self.rows_read:,} rows read, {self.bad_rows:,} bad) in {self.seconds:.1f} s; "
                f"catalog version {self.catalog_version}"
            ]
        if self.alt_titles_written:
            lines.append(f"  {self.alt_titles_written:,} alternate titles")
        if self.phases:
            steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.phases.items())
            lines.append(f"  time: {steps}")
        for bad in self.bad_row_samples:
            lines.append(f"  skipped {bad.file}:{bad.line}: {bad.reason}")
        if self.bad_rows > len(self.bad_row_samples):
            lines.append(f"  ... and {self.bad_rows - len(self.bad_row_samples):,} more")
        return "\n".join(lines)
