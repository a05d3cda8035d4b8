"""MovieLens ``movies.csv``: ``movieId,title,genres`` with the year in the title.

Titles look like ``"City of Lost Children, The (Cité des enfants perdus, La) (1995)"``:
the year comes off the end, an alternate title in parentheses becomes an
alternate title, and a trailing article moves to the front.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

from reelsearch.catalog.importers.tsv import open_text, read_errors, stored_position
from reelsearch.catalog.progress import ROWS_PER_UPDATE, Progress
from reelsearch.catalog.records import ImportReport, MovieRecord, article_first
from reelsearch.catalog.writer import open_import
from reelsearch.config import Settings
from reelsearch.errors import BadFileFormat

SOURCE = "movielens"
HEADER = ["movieId", "title", "genres"]
NO_GENRES = "(no genres listed)"
_YEAR = re.compile(r"\s*\((\d{4})(?:[-–]\d{0,4})?\)\s*$")
_ALT = re.compile(r"^(?P<main>.+?)\s+\((?P<alt>[^()]+)\)$")


def split_title(raw: str) -> tuple[str, int | None, tuple[str, ...]]:
    """``"Seven (a.k.a. Se7en) (1995)"`` -> ``("Seven", 1995, ("Se7en",))``."""
    year = None
    if match := _YEAR.search(raw):
        year = int(match[1])
        raw = raw[: match.start()]
    alts: tuple[str, ...] = ()
    if match := _ALT.match(raw.strip()):
        raw = match["main"]
        alt = match["alt"].removeprefix("a.k.a. ").strip()
        alts = (article_first(alt),)
    return article_first(raw.strip()), year, alts


def read_movies(
    path: Path, report: ImportReport, progress: Progress | None = None
) -> Iterator[MovieRecord]:
    name = path.name
    progress = progress or Progress()
    with open_text(path) as handle, read_errors(name):
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header != HEADER:
                raise BadFileFormat(
                    f"{name}: not a MovieLens movies.csv: header is {header!r}, expected {HEADER}"
                )
            progress.begin(f"reading {name}", total=path.stat().st_size, unit="B")
            for fields in reader:
                report.rows_read += 1
                line = reader.line_num
                if report.rows_read % ROWS_PER_UPDATE == 0:
                    progress.update_to(stored_position(handle), note=f"{line:,} rows")
                if len(fields) != 3:
                    report.add_bad_row(name, line, f"{len(fields)} columns, expected 3")
                    continue
                movie_id, raw_title, genres = fields
                if not movie_id.isdigit():
                    report.add_bad_row(name, line, f"bad movieId {movie_id[:20]!r}")
                    continue
                title, year, alts = split_title(raw_title)
                if not title:
                    report.add_bad_row(name, line, "empty title")
                    continue
                yield MovieRecord(
                    source_key=f"{SOURCE}:{movie_id}",
                    title=title,
                    year=year,
                    genres=tuple(g for g in genres.split("|") if g and g != NO_GENRES),
                    alt_titles=alts,
                )
            progress.end()
        except csv.Error as exc:
            raise BadFileFormat(f"{name}:{reader.line_num}: not valid CSV: {exc}") from exc


def import_movielens(
    settings: Settings, path: Path, *, progress: Progress | None = None
) -> ImportReport:
    """Replace the catalog with the movies in ``movies.csv``, in one transaction."""
    with open_import(settings, SOURCE, progress=progress) as job:
        job.add_movies(read_movies(path, job.report, progress))
    return job.report
