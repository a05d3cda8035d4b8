"""A whole catalog from JSON lines: one movie document a line, as the bulk API takes them.

Each line is ``{"source": ..., "source_id": ..., "title": ..., ...}``
(``catalog/documents.py`` checks every field). The file replaces the catalog
in one import transaction with the guards every import has: a file with no
good line is refused, and so is one that would shrink the catalog past
``import_max_shrink`` unless ``--allow-shrink``. A bad line is skipped and
reported with its line number and field, as other importers skip bad rows; a
source id seen twice keeps its last line. ``.jsonl.gz`` is read gunzipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson

from reelsearch.catalog.documents import InvalidDocument, PutMovie, operation_of_line
from reelsearch.catalog.importers.tsv import open_text, read_errors, stored_position
from reelsearch.catalog.progress import ROWS_PER_UPDATE, Progress
from reelsearch.catalog.records import ImportReport, MovieRecord
from reelsearch.catalog.writer import open_import
from reelsearch.config import Settings
from reelsearch.errors import BadFileFormat

SOURCE = "jsonl"


def read_movies(
    path: Path, report: ImportReport, progress: Progress | None = None
) -> Iterator[MovieRecord]:
    """The movies of a JSON-lines file; bad lines go to ``report`` with the reason."""
    name = path.name
    progress = progress or Progress()
    with open_text(path) as handle, read_errors(name):
        progress.begin(f"reading {name}", total=path.stat().st_size, unit="B")
        for number, line in enumerate(handle, start=1):
            if number % ROWS_PER_UPDATE == 0:
                progress.update_to(stored_position(handle), note=f"{number:,} lines")
            if not line.strip():
                continue
            report.rows_read += 1
            try:
                try:
                    document = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    if number == 1:  # not JSON lines at all: say so, read no further
                        raise BadFileFormat(
                            f"{name}: not JSON lines (one JSON object a line): {exc}"
                        ) from None
                    raise InvalidDocument(f"not valid JSON: {exc}", param=None) from None
                operation = operation_of_line(document, number)
                if not isinstance(operation, PutMovie):
                    raise InvalidDocument(
                        "a delete means nothing in a whole catalog: leave the movie out",
                        param="op",
                    )
            except InvalidDocument as exc:
                report.add_bad_row(name, number, exc.message.removeprefix(f"line {number}: "))
                continue
            yield operation.record
        progress.end()


def import_jsonl(
    settings: Settings, path: Path, *, progress: Progress | None = None
) -> ImportReport:
    """Replace the catalog with the movies of a JSON-lines file, in one transaction."""
    with open_import(settings, SOURCE, progress=progress) as job:
        job.add_movies(read_movies(path, job.report, progress))
    return job.report
