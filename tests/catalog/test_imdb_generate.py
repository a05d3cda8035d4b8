"""Tests for the synthetic IMDb dataset generator (reelsearch.catalog.imdb_generate)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from reelsearch.catalog.imdb_generate import GeneratedDataset, write_imdb_dataset

TITLES = 2_000
BASICS_HEADER = [
    "tconst",
    "titleType",
    "primaryTitle",
    "originalTitle",
    "isAdult",
    "startYear",
    "endYear",
    "runtimeMinutes",
    "genres",
]
RATINGS_HEADER = ["tconst", "averageRating", "numVotes"]
AKAS_HEADER = [
    "titleId",
    "ordering",
    "title",
    "region",
    "language",
    "types",
    "attributes",
    "isOriginalTitle",
]
TITLE_TYPES = {
    "movie",
    "short",
    "tvSeries",
    "tvEpisode",
    "tvMovie",
    "video",
    "tvMiniSeries",
    "tvSpecial",
    "videoGame",
    "tvShort",
}
GENRE_TEXT = (
    "Action Adult Adventure Animation Biography Comedy Crime Documentary Drama Family Fantasy "
    "Film-Noir Game-Show History Horror Music Musical Mystery News Reality-TV Romance Sci-Fi "
    "Short Sport Talk-Show Thriller War Western"
)
GENRES = set(GENRE_TEXT.split())
NULL = "\\N"
FILES = ["basics", "ratings", "akas"]


def _text(path: Path) -> str:
    with gzip.open(path, "rb") as raw:
        return raw.read().decode("utf-8")


def _rows(path: Path) -> list[list[str]]:
    *lines, last = _text(path).split("\n")
    assert not last, "the file must end with a newline"
    return [line.split("\t") for line in lines]


def _path(dataset: GeneratedDataset, name: str) -> Path:
    path: Path | None = getattr(dataset, name)
    assert path is not None
    return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> GeneratedDataset:
    return write_imdb_dataset(tmp_path_factory.mktemp("imdb"), TITLES, seed=7)


@pytest.fixture(scope="module")
def basics(dataset: GeneratedDataset) -> list[list[str]]:
    return _rows(dataset.basics)[1:]


def test_returns_the_three_paths_and_the_title_count(dataset: GeneratedDataset) -> None:
    """The result names the three files in the output directory and the title count."""
    folder = dataset.basics.parent
    expected = GeneratedDataset(
        folder / "title.basics.tsv.gz",
        folder / "title.ratings.tsv.gz",
        folder / "title.akas.tsv.gz",
        TITLES,
    )
    assert expected == dataset


@pytest.mark.parametrize(
    ("name", "header"),
    [("basics", BASICS_HEADER), ("ratings", RATINGS_HEADER), ("akas", AKAS_HEADER)],
)
def test_header_row_matches_imdb(dataset: GeneratedDataset, name: str, header: list[str]) -> None:
    """Each file starts with IMDb's exact tab-separated header row."""
    first_line = _text(_path(dataset, name)).split("\n", 1)[0]
    assert "\t".join(header) == first_line


@pytest.mark.parametrize(("name", "columns"), [("basics", 9), ("ratings", 3), ("akas", 8)])
def test_every_row_has_the_header_column_count(
    dataset: GeneratedDataset, name: str, columns: int
) -> None:
    """No title breaks a row: every line splits into exactly the header's number of fields."""
    counts = {len(row) for row in _rows(_path(dataset, name))}
    assert {columns} == counts


@pytest.mark.parametrize("name", FILES)
def test_nulls_are_backslash_n_never_empty(dataset: GeneratedDataset, name: str) -> None:
    """Missing values are written as \\N, so no field is ever empty or padded."""
    expected: list[list[str]] = []
    rows = _rows(_path(dataset, name))
    assert expected == [row for row in rows if any(f == "" or f != f.strip() for f in row)]
    assert (name != "ratings") == any(NULL in row for row in rows[1:])


def test_row_count_equals_titles(basics: list[list[str]]) -> None:
    """title.basics holds exactly one row per requested title."""
    expected = TITLES
    assert expected == len(basics)


def test_tconsts_are_zero_padded_unique_and_ascending(basics: list[list[str]]) -> None:
    """tconst is tt plus at least 7 digits, rows sorted by increasing id like the dumps."""
    expected: list[str] = []
    tconsts = [row[0] for row in basics]
    assert expected == [t for t in tconsts if not re.fullmatch(r"tt\d{7,}", t)]
    numbers = [int(t[2:]) for t in tconsts]
    assert sorted(set(numbers)) == numbers


def test_title_types_come_from_imdb_with_episodes_most_common(basics: list[list[str]]) -> None:
    """titleType is one of IMDb's ten values, and tvEpisode is the most frequent."""
    kinds = [row[1] for row in basics]
    assert set() == set(kinds) - TITLE_TYPES
    expected = "tvEpisode"
    assert expected == max(TITLE_TYPES, key=kinds.count)


def test_basics_fields_have_imdb_value_ranges(basics: list[list[str]]) -> None:
    """isAdult is 0/1, years are 1890-2026 or \\N, runtimes positive ints or \\N."""
    expected: list[str] = []
    assert {"0", "1"} == {row[4] for row in basics}
    years = [row[5] for row in basics if row[5] != NULL]
    assert expected == [y for y in years if not 1890 <= int(y) <= 2026]
    runtimes = [row[7] for row in basics if row[7] != NULL]
    assert expected == [r for r in runtimes if not (r.isdigit() and int(r) > 0)]


def test_only_series_have_an_end_year(basics: list[list[str]]) -> None:
    """endYear is \\N except for tvSeries and tvMiniSeries, and never before startYear."""
    expected: list[list[str]] = []
    ended = [row for row in basics if row[6] != NULL]
    assert {"tvSeries", "tvMiniSeries"} == {row[1] for row in ended}
    assert expected == [row for row in ended if int(row[6]) < int(row[5])]


def test_genres_are_up_to_three_sorted_imdb_genres(basics: list[list[str]]) -> None:
    """genres is \\N or 1-3 distinct IMDb genres, comma separated in alphabetical order."""
    expected: list[list[str]] = []
    lists = [row[8].split(",") for row in basics if row[8] != NULL]
    assert expected == [g for g in lists if not (g == sorted(set(g)) and 1 <= len(g) <= 3)]
    assert set() == {genre for g in lists for genre in g} - GENRES


def test_some_titles_contain_quotes_written_raw(basics: list[list[str]]) -> None:
    """Some titles hold " and ' characters, written as is without any quoting."""
    expected: list[str] = []
    titles = [row[2] for row in basics]
    assert any('"' in title for title in titles)
    assert any("'" in title for title in titles)
    assert expected == [t for t in titles if '""' in t]  # no CSV-style doubled quotes


def test_titles_show_accents_sequels_and_subtitles(basics: list[list[str]]) -> None:
    """Titles include accented letters, sequel numbers, colons and hyphens."""
    text = "\n".join(row[2] for row in basics)
    assert {"é", ":", "-", " II", " 2"} == {s for s in ("é", ":", "-", " II", " 2") if s in text}


def test_original_title_usually_equals_primary(basics: list[list[str]]) -> None:
    """originalTitle differs from primaryTitle for only a few percent of the titles."""
    differing = sum(row[2] != row[3] for row in basics)
    assert 0 < differing < TITLES * 0.15


def test_ratings_reference_only_basics_tconsts(
    dataset: GeneratedDataset, basics: list[list[str]]
) -> None:
    """Every rated tconst exists in title.basics, once."""
    rated = [row[0] for row in _rows(dataset.ratings)[1:]]
    assert len(set(rated)) == len(rated)
    assert set() == set(rated) - {row[0] for row in basics}


def test_about_a_third_of_titles_are_rated(dataset: GeneratedDataset) -> None:
    """Only a subset of the titles (~30%) has a rating."""
    rated = len(_rows(dataset.ratings)) - 1
    assert pytest.approx(0.3, abs=0.08) == rated / TITLES


def test_ratings_have_imdb_value_ranges(dataset: GeneratedDataset) -> None:
    """averageRating has one decimal in 1.0-10.0; numVotes is a positive, mostly small int."""
    expected: list[list[str]] = []
    rows = _rows(dataset.ratings)[1:]
    bad = [r for r in rows if not re.fullmatch(r"\d+\.\d", r[1]) or not 1 <= float(r[1]) <= 10]
    assert expected == bad
    votes = [int(row[2]) for row in rows]
    assert min(votes) > 0
    assert sum(v < 100 for v in votes) > len(votes) / 2


def test_akas_reference_basics_with_an_original_title_row(
    dataset: GeneratedDataset, basics: list[list[str]]
) -> None:
    """Every titleId exists in basics; ordering counts from 1 and isOriginalTitle is 0/1."""
    rows = _rows(_path(dataset, "akas"))[1:]
    assert set() == {row[0] for row in rows} - {row[0] for row in basics}
    assert {"0", "1"} == {row[7] for row in rows}
    originals = [row for row in rows if row[1] == "1"]
    assert {"1"} == {row[7] for row in originals}


def test_same_seed_gives_identical_content(dataset: GeneratedDataset, tmp_path: Path) -> None:
    """Writing again with the same (titles, seed) reproduces every file byte for byte."""
    again = write_imdb_dataset(tmp_path, TITLES, seed=7)
    for name in FILES:
        assert _text(_path(dataset, name)) == _text(_path(again, name))


def test_different_seed_gives_different_content(dataset: GeneratedDataset, tmp_path: Path) -> None:
    """Another seed gives other titles."""
    other = write_imdb_dataset(tmp_path, TITLES, seed=8, akas=False)
    assert _text(dataset.basics) != _text(other.basics)


def test_vocabulary_grows_with_the_catalog(tmp_path: Path) -> None:
    """Ten times more titles brings several times more distinct title words."""

    def vocabulary(titles: int) -> int:
        written = write_imdb_dataset(tmp_path / str(titles), titles, akas=False)
        rows = _rows(written.basics)[1:]
        return len({w for row in rows for w in re.findall(r"\w+", row[2].lower())})

    assert vocabulary(1_000) * 4 < vocabulary(10_000)


def test_akas_false_writes_no_akas_file(tmp_path: Path) -> None:
    """With akas=False only basics and ratings are written."""
    expected = (None, ["title.basics.tsv.gz", "title.ratings.tsv.gz"])
    written = write_imdb_dataset(tmp_path, 50, akas=False)
    assert expected == (written.akas, sorted(p.name for p in tmp_path.iterdir()))


def test_zero_titles_writes_header_only_files(tmp_path: Path) -> None:
    """A dataset of 0 titles is three files holding just their header rows."""
    written = write_imdb_dataset(tmp_path, 0)
    expected = [1, 1, 1]
    lines = [_text(_path(written, name)).count("\n") for name in FILES]
    assert expected == lines


def test_negative_title_count_is_rejected(tmp_path: Path) -> None:
    """A negative number of titles raises ValueError."""
    with pytest.raises(ValueError, match="titles"):
        write_imdb_dataset(tmp_path, -1)
