"""The hand-curated alternate titles of the sample (sample_akas.tsv) and their import."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import sqlite3
from collections import Counter
from importlib import resources
from typing import Any

import pytest

from reelsearch.catalog.importers.sample import (
    AKAS_FILE,
    load_sample_akas,
    load_sample_frame,
    read_sample_akas,
    resolve_sample_akas,
)
from reelsearch.config import Settings
from reelsearch.errors import ImportFailed
from reelsearch.search.normalize import normalize

AKAS_TEXT = resources.files("reelsearch.catalog.importers").joinpath(AKAS_FILE).read_text("utf-8")


@pytest.fixture(scope="module")
def frame() -> Any:
    """The sample as the importer reads it."""
    return load_sample_frame()


def catalog_rows(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    if settings.backend == "postgresql":
        import psycopg

        with psycopg.connect(settings.postgres_dsn) as pg:
            return pg.execute(sql).fetchall()
    with sqlite3.connect(settings.sqlite_path) as lite:
        rows = lite.execute(sql).fetchall()
    lite.close()
    return rows


def test_every_row_names_one_sample_movie(frame: Any) -> None:
    """Each (title, year) of the file resolves to exactly one sample movie: 120+ films."""
    akas = load_sample_akas(frame)
    rows = read_sample_akas(AKAS_TEXT)
    assert len(rows) == len(akas)
    assert len({key for key, _ in akas}) >= 120


def test_rows_are_distinct_and_really_other_titles() -> None:
    """No row twice, and no alternate title that is its movie's title once normalized."""
    rows = read_sample_akas(AKAS_TEXT)
    assert {} == {row: n for row, n in Counter(rows).items() if n > 1}
    assert [] == [row for row in rows if normalize(row[0]) == normalize(row[2])]


def test_a_row_naming_no_sample_movie_fails_naming_it(frame: Any) -> None:
    """A title or year the sample doesn't hold is a mistake in the file, not a silent skip."""
    with pytest.raises(ImportFailed, match=r"'Lola rennt' \(1997\): not in the sample"):
        resolve_sample_akas(frame, [("Lola rennt", 1997, "Run Lola Run")])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("title\tyear\talternate\n", "expected the header"),
        ("title\tyear\talt_title\ttag\nLola rennt\tnineteen\tRun Lola Run\ten\n", "line 2"),
        ("# comment\ntitle\tyear\talt_title\ttag\nLola rennt\t1998\n", "line 3"),
    ],
)
def test_a_malformed_file_is_refused_with_the_line(text: str, message: str) -> None:
    """A wrong header or a short row stops the import with the line number."""
    with pytest.raises(ImportFailed, match=message):
        read_sample_akas(text)


def test_the_import_attaches_them(sample_backend_settings: Settings, frame: Any) -> None:
    """After ``import sample`` each curated title is an alternate title of its movie."""
    rows = catalog_rows(
        sample_backend_settings,
        "SELECT m.source_key, a.title FROM alt_titles AS a JOIN movies AS m ON m.id = a.movie_id",
    )
    assert set(load_sample_akas(frame)) == set(rows)
