"""IMDb non-commercial dumps: ``title.basics``, ``title.ratings``, ``title.akas``.

Streamed file by file into one import transaction: basics become movies,
ratings update them, akas attach alternate titles. Memory stays bounded by
the batch size whatever the file size.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from reelsearch.catalog.guards import check_kinds_found
from reelsearch.catalog.importers.tsv import NULL, null_or, read_tsv
from reelsearch.catalog.progress import Progress
from reelsearch.catalog.records import ImportReport, MovieRecord
from reelsearch.catalog.writer import open_import
from reelsearch.config import Settings
from reelsearch.errors import BadFileFormat

SOURCE = "imdb"
BASICS_HEADER = (
    "tconst", "titleType", "primaryTitle", "originalTitle", "isAdult",
    "startYear", "endYear", "runtimeMinutes", "genres",
)  # fmt: skip
RATINGS_HEADER = ("tconst", "averageRating", "numVotes")
AKAS_HEADER = (
    "titleId", "ordering", "title", "region", "language", "types", "attributes",
    "isOriginalTitle",
)  # fmt: skip
_TCONST = re.compile(r"tt\d{7,}")


def classify_files(paths: Sequence[Path]) -> dict[str, Path]:
    """Map each file to its role by name (``title.basics`` etc.); basics is required."""
    roles: dict[str, Path] = {}
    for path in paths:
        for role in ("basics", "ratings", "akas"):
            if f"title.{role}" in path.name:
                roles[role] = path
                break
        else:
            raise BadFileFormat(
                f"{path.name}: not an IMDb dump (expected title.basics/ratings/akas.tsv[.gz])"
            )
    if "basics" not in roles:
        raise BadFileFormat("an IMDb import needs title.basics.tsv.gz")
    return roles


def read_basics(
    path: Path,
    report: ImportReport,
    kinds: frozenset[str] | None,
    progress: Progress | None = None,
) -> Iterator[MovieRecord]:
    """Movies of ``title.basics``; a kind in ``kinds`` that no row has fails (after the file)."""
    name = path.name
    seen_kinds: Counter[str] = Counter()
    for line, fields in read_tsv(path, BASICS_HEADER, progress):
        report.rows_read += 1
        if len(fields) != len(BASICS_HEADER):
            report.add_bad_row(name, line, f"{len(fields)} columns, expected 9")
            continue
        tconst, kind, title, original, _adult, start, _end, runtime, genres = fields
        if not _TCONST.fullmatch(tconst):
            report.add_bad_row(name, line, f"bad tconst {tconst[:20]!r}")
            continue
        seen_kinds[kind] += 1
        if kinds is not None and kind not in kinds:
            continue
        if not title or title == NULL:
            report.add_bad_row(name, line, "empty title")
            continue
        try:
            year = int(start) if start != NULL else None
            runtime_min = int(runtime) if runtime != NULL else None
        except ValueError:
            report.add_bad_row(name, line, f"bad year {start[:10]!r} or runtime {runtime[:10]!r}")
            continue
        yield MovieRecord(
            source_key=f"{SOURCE}:{tconst}",
            title=title,
            original_title=null_or(original),
            year=year,
            runtime_min=runtime_min,
            genres=tuple(genres.split(",")) if genres != NULL else (),
            kind=kind,
        )
    check_kinds_found(kinds, seen_kinds, file=name)


def read_ratings(
    path: Path, report: ImportReport, progress: Progress | None = None
) -> Iterator[tuple[str, float | None, int]]:
    name = path.name
    for line, fields in read_tsv(path, RATINGS_HEADER, progress):
        if len(fields) != 3 or not _TCONST.fullmatch(fields[0]):
            report.add_bad_row(name, line, "expected tconst, averageRating, numVotes")
            continue
        try:
            rating = float(fields[1]) if fields[1] != NULL else None
            votes = int(fields[2]) if fields[2] != NULL else 0
        except ValueError:
            report.add_bad_row(name, line, f"bad rating {fields[1][:10]!r} or votes")
            continue
        if rating is not None and not 0.0 <= rating <= 10.0:
            report.add_bad_row(name, line, f"rating {rating} outside 0-10")
            continue
        yield f"{SOURCE}:{fields[0]}", rating, votes


def read_akas(
    path: Path, report: ImportReport, progress: Progress | None = None
) -> Iterator[tuple[str, str]]:
    name = path.name
    for line, fields in read_tsv(path, AKAS_HEADER, progress):
        if len(fields) != len(AKAS_HEADER) or not _TCONST.fullmatch(fields[0]):
            report.add_bad_row(name, line, "expected 8 columns starting with a tconst")
            continue
        if fields[2] and fields[2] != NULL:
            yield f"{SOURCE}:{fields[0]}", fields[2]


def import_imdb(
    settings: Settings,
    paths: Sequence[Path],
    *,
    kinds: frozenset[str] | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Replace the catalog with the titles in the dumps, in one transaction."""
    roles = classify_files(paths)
    with open_import(settings, SOURCE, progress=progress) as job:
        if "ratings" in roles:
            job.stage_ratings(read_ratings(roles["ratings"], job.report, progress))
        job.add_movies(read_basics(roles["basics"], job.report, kinds, progress))
        if "akas" in roles:
            job.add_alt_titles(read_akas(roles["akas"], job.report, progress))
    return job.report
