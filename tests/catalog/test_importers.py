"""Importers and the import transaction, on real SQLite files in tmp_path."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import dataclasses
import gzip
import sqlite3
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reelsearch.catalog import BadRow, CatalogImport, MovieRecord
from reelsearch.catalog.importers.imdb import BASICS_HEADER, import_imdb
from reelsearch.catalog.importers.movielens import import_movielens, split_title
from reelsearch.catalog.importers.sample import import_sample
from reelsearch.catalog.records import article_first
from reelsearch.cli import main
from reelsearch.config import Settings
from reelsearch.db import ReadPool
from reelsearch.errors import BadFileFormat, ImportFailed
from reelsearch.search.backends import open_blocking_engine

N = "\\N"
SENTINEL = "2000-01-01T00:00:00+00:00"


def connect(settings: Settings) -> sqlite3.Connection:
    return sqlite3.connect(settings.sqlite_path)


def catalog_state(settings: Settings) -> dict[str, Any]:
    """Everything an import may change, read in one transaction."""
    conn = connect(settings)
    try:
        conn.execute("BEGIN")
        state = {
            "meta": sorted(conn.execute("SELECT key, value FROM catalog_meta")),
            "movies": conn.execute(
                "SELECT id, source_key, title, original_title, year, runtime_min, rating, votes, "
                "genres, kind, norm_title, search_rank, updated_at FROM movies ORDER BY id"
            ).fetchall(),
            "alt_titles": conn.execute(
                "SELECT movie_id, title FROM alt_titles ORDER BY movie_id, title"
            ).fetchall(),
            "genres": conn.execute("SELECT bit, name FROM genres ORDER BY bit").fetchall(),
            "fts": conn.execute(
                "SELECT rowid FROM title_fts WHERE title_fts MATCH 'matrix' ORDER BY rowid"
            ).fetchall(),
        }
        conn.execute("COMMIT")
        return state
    finally:
        conn.close()


def movie(settings: Settings, source_key: str) -> dict[str, Any] | None:
    conn = connect(settings)
    conn.row_factory = sqlite3.Row
    try:
        row = conn.execute("SELECT * FROM movies WHERE source_key = ?", (source_key,)).fetchone()
        if row is None:
            return None
        found = dict(row)
        found["alt_titles"] = [
            title
            for (title,) in conn.execute(
                "SELECT title FROM alt_titles WHERE movie_id = ? ORDER BY title", (row["id"],)
            )
        ]
        return found
    finally:
        conn.close()


def version(settings: Settings) -> int:
    conn = connect(settings)
    try:
        return int(
            conn.execute("SELECT value FROM catalog_meta WHERE key = 'version'").fetchone()[0]
        )
    finally:
        conn.close()


def write_gz(path: Path, text: str) -> Path:
    with gzip.open(path, "wt", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
    return path


def basics_text(rows: list[list[str]]) -> str:
    return "".join("\t".join(row) + "\n" for row in [list(BASICS_HEADER), *rows])


def basic(tconst: str, title: str, year: str = "2000", kind: str = "movie") -> list[str]:
    return [tconst, kind, title, title, "0", year, N, "90", "Drama"]


# -- the bundled sample ------------------------------------------------------------------


def test_sample_has_every_movie(sample_settings: Settings) -> None:
    """The sample import writes all 58,788 ggplot2movies rows."""
    conn = connect(sample_settings)
    try:
        assert (58_788, 58_788, 1, 58_788) == conn.execute(
            "SELECT count(*), count(DISTINCT search_rank), min(search_rank), max(search_rank) "
            "FROM movies"
        ).fetchone()
    finally:
        conn.close()


def test_sample_moves_trailing_article_to_front(sample_settings: Settings) -> None:
    """'Matrix, The' is stored as 'The Matrix', with its year, votes and genre flags."""
    found = movie(sample_settings, "ggplot2movies:32710")
    assert found is not None
    assert ("The Matrix", 1999, "Action", "the matrix") == (
        found["title"],
        found["year"],
        found["genres"],
        found["norm_title"],
    )
    assert 32710 == found["id"]


@pytest.mark.slow
def test_sample_reimport_keeps_ids_and_unchanged_rows(sample_db: Path, tmp_path: Path) -> None:
    """Re-importing the sample keeps every id and leaves updated_at of unchanged rows alone."""
    copy = tmp_path / "again.db"
    with sqlite3.connect(sample_db) as source, sqlite3.connect(copy) as target:
        source.backup(target)
        target.execute("UPDATE movies SET updated_at = ?", (SENTINEL,))
        target.commit()
    source.close()
    target.close()
    settings = Settings(database_url=f"sqlite:///{copy}")
    before = catalog_state(settings)

    report = import_sample(settings)

    after = catalog_state(settings)
    assert 2 == report.catalog_version
    assert [(m[0], m[1]) for m in before["movies"]] == [(m[0], m[1]) for m in after["movies"]]
    assert set() == {m[12] for m in after["movies"]} - {SENTINEL}


# -- IMDb dumps ----------------------------------------------------------------------------


def test_imdb_import_reads_every_field(small_settings: Settings) -> None:
    """Basics, ratings and akas end up in one movie row with its alternate titles."""
    found = movie(small_settings, "imdb:tt0000004")
    assert found is not None
    assert {
        "title": "Amélie",
        "original_title": "Le fabuleux destin d'Amélie Poulain",
        "year": 2001,
        "runtime_min": 122,
        "rating": 8.3,
        "votes": 780_000,
        "genres": "Comedy,Romance",
        "kind": "movie",
        "norm_title": "amelie",
        "alt_titles": ["Le fabuleux destin d'Amélie Poulain"],
    } == {key: found[key] for key in (
        "title", "original_title", "year", "runtime_min", "rating", "votes", "genres", "kind",
        "norm_title", "alt_titles",
    )}  # fmt: skip


def test_imdb_nulls_become_none(small_settings: Settings) -> None:
    r"""``\N`` year, runtime, genres and a missing rating are stored as NULL / empty."""
    found = movie(small_settings, "imdb:tt0000020")
    assert found is not None
    assert (None, None, None, 0, "", 0, None) == (
        found["year"],
        found["runtime_min"],
        found["rating"],
        found["votes"],
        found["genres"],
        found["genre_mask"],
        found["original_title"],
    )


def test_imdb_title_with_double_quotes_is_kept_verbatim(small_settings: Settings) -> None:
    """IMDb does not quote fields: a title containing '"' is read as is."""
    found = movie(small_settings, "imdb:tt0000019")
    assert found is not None
    assert ('Say "Cheese"', "short", "say cheese") == (
        found["title"],
        found["kind"],
        found["norm_title"],
    )


def test_imdb_bad_rows_are_counted_with_line_numbers(tmp_path: Path) -> None:
    """Wrong column count, bad tconst and non-numeric year skip the row, not the import."""
    basics = write_gz(
        tmp_path / "title.basics.tsv.gz",
        basics_text(
            [
                basic("tt0000001", "Good One"),
                basic("tt0000002", "Short Row")[:8],
                basic("nm0000003", "Bad Tconst"),
                basic("tt0000004", "Bad Year", year="19x9"),
                basic("tt0000005", "Good Two"),
                ["tt0000006", "movie", N, N, "0", "2000", N, "90", "Drama"],
            ]
        ),
    )
    ratings = write_gz(
        tmp_path / "title.ratings.tsv.gz",
        "tconst\taverageRating\tnumVotes\n"
        "tt0000001\t7.5\t100\n"
        "tt0000005\t11.0\t100\n"
        "tt0000005\tabc\t100\n"
        "tt0000005\t6.0\n"
        "tt0009999\t5.0\t10\n",
    )
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}")

    report = import_imdb(settings, [basics, ratings])

    assert (6, 2, 7) == (report.rows_read, report.movies_written, report.bad_rows)
    assert [
        ("title.basics.tsv.gz", 3),
        ("title.basics.tsv.gz", 4),
        ("title.basics.tsv.gz", 5),
        ("title.basics.tsv.gz", 7),
        ("title.ratings.tsv.gz", 3),
        ("title.ratings.tsv.gz", 4),
        ("title.ratings.tsv.gz", 5),
    ] == sorted((bad.file, bad.line) for bad in report.bad_row_samples)
    reasons = [bad.reason for bad in sorted(report.bad_row_samples, key=lambda b: (b.file, b.line))]
    assert "8 columns" in reasons[0]
    assert "nm0000003" in reasons[1]
    assert "19x9" in reasons[2]
    assert "empty title" == reasons[3]
    assert (7.5, 100) == tuple(movie(settings, "imdb:tt0000001")[k] for k in ("rating", "votes"))  # type: ignore[index]
    assert (None, 0) == tuple(movie(settings, "imdb:tt0000005")[k] for k in ("rating", "votes"))  # type: ignore[index]
    assert "skipped title.basics.tsv.gz:3:" in report.render()


def test_imdb_ratings_and_akas_attach_to_movies(imdb_writer: Any, tmp_path: Path) -> None:
    """Ratings set rating and votes; akas become alternate titles; unknown ids are ignored."""
    files = imdb_writer(
        [
            ("tt0000001", "movie", "Se7en", "Se7en", "1995", "127", "Crime", 8.6, 1_700_000),
            ("tt0000002", "movie", "Heat", "Heat", "1995", "170", "Crime", None, 0),
        ],
        [("tt0000001", "Seven"), ("tt0000001", "Sieben"), ("tt0000404", "Nobody")],
        extra_akas=["tt0000002\t9\t\\N\tUS\t\\N\t\\N\t\\N\t0", "not\ta\tvalid\trow"],
    )
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}")

    report = import_imdb(settings, list(files.values()))

    seven = movie(settings, "imdb:tt0000001")
    heat = movie(settings, "imdb:tt0000002")
    assert seven is not None and heat is not None
    assert (8.6, 1_700_000, ["Seven", "Sieben"]) == (
        seven["rating"],
        seven["votes"],
        seven["alt_titles"],
    )
    assert (None, 0, []) == (heat["rating"], heat["votes"], heat["alt_titles"])
    assert 2 == report.alt_titles_written
    assert [BadRow("title.akas.tsv.gz", 6, "expected 8 columns starting with a tconst")] == (
        report.bad_row_samples
    )


def test_imdb_kinds_filter_keeps_only_those_kinds(imdb_writer: Any, tmp_path: Path) -> None:
    """``kinds`` drops other title types without counting them as bad rows."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}")

    report = import_imdb(
        settings, list(imdb_writer().values()), kinds=frozenset({"movie", "short"})
    )

    conn = connect(settings)
    kinds = dict(conn.execute("SELECT kind, count(*) FROM movies GROUP BY kind"))
    conn.close()
    assert {"movie": 26, "short": 1} == kinds
    assert (30, 27, 0) == (report.rows_read, report.movies_written, report.bad_rows)


def test_cli_import_imdb_with_kinds(
    imdb_writer: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``reelsearch import imdb FILES --kinds`` imports and prints the report."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    files = [str(p) for p in imdb_writer().values()]

    main(["--database-url", url, "import", "imdb", *files, "--kinds", "tvSeries,video"])

    out = capsys.readouterr().out
    assert out.startswith("imported imdb: 2 movies (30 rows read, 0 bad)")
    conn = sqlite3.connect(tmp_path / "cli.db")
    assert [("tvSeries",), ("video",)] == conn.execute(
        "SELECT kind FROM movies ORDER BY kind"
    ).fetchall()
    conn.close()


def test_cli_reports_a_wrong_file_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refused import says it was rolled back and why on stderr, and exits with status 1."""
    wrong = tmp_path / "title.basics.tsv"
    wrong.write_text("movieId,title,genres\n1,Heat (1995),Action\n", encoding="utf-8")

    with pytest.raises(SystemExit) as exit_info:
        main(["--database-url", f"sqlite:///{tmp_path / 'c.db'}", "import", "imdb", str(wrong)])

    assert 1 == exit_info.value.code
    err = capsys.readouterr().err
    assert err.startswith("reelsearch: import failed and was rolled back")
    assert "title.basics.tsv: not the expected" in err


def test_imdb_file_names_are_checked_before_reading(tmp_path: Path) -> None:
    """A file not named title.basics/ratings/akas, or no basics at all, is refused up front."""
    with pytest.raises(BadFileFormat, match="not an IMDb dump"):
        import_imdb(Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}"), [tmp_path / "x.csv"])
    with pytest.raises(BadFileFormat, match="needs title.basics"):
        import_imdb(
            Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}"),
            [tmp_path / "title.ratings.tsv.gz"],
        )


# -- wrong files and interrupted imports leave the catalog untouched -------------------------


def _csv_as_basics(directory: Path) -> list[Path]:
    path = directory / "title.basics.tsv"
    path.write_text("movieId,title,genres\n1,Heat (1995),Action\n", encoding="utf-8")
    return [path]


def _not_gzip(directory: Path) -> list[Path]:
    path = directory / "title.basics.tsv.gz"
    path.write_bytes(basics_text([basic("tt0000001", "Plain Text")]).encode())
    return [path]


def _not_utf8(directory: Path) -> list[Path]:
    path = directory / "title.basics.tsv.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(
            basics_text([basic("tt0000001", "Caf\udce9")]).encode("utf-8", "surrogateescape")
        )
    return [path]


def _ratings_as_basics(directory: Path) -> list[Path]:
    return [write_gz(directory / "title.basics.tsv.gz", "tconst\taverageRating\tnumVotes\n")]


def _empty_gzip(directory: Path) -> list[Path]:
    return [write_gz(directory / "title.basics.tsv.gz", "")]


@pytest.mark.parametrize(
    "make_files",
    [_csv_as_basics, _not_gzip, _not_utf8, _ratings_as_basics, _empty_gzip],
    ids=["csv-as-basics", "not-gzip-named-gz", "not-utf8", "ratings-as-basics", "empty-gzip"],
)
def test_imdb_wrong_file_fails_with_bad_file_format(
    small_copy: Settings, tmp_path: Path, make_files: Any
) -> None:
    """A file that is not an IMDb dump raises BadFileFormat; the catalog is left as it was."""
    before = catalog_state(small_copy)

    with pytest.raises(BadFileFormat):
        import_imdb(small_copy, make_files(tmp_path))

    assert before == catalog_state(small_copy)


@pytest.mark.parametrize(
    ("content", "name"),
    [
        ("1\tHeat\t1995\n", "movies.csv"),
        ("movieId\ttitle\tgenres\n1\tHeat (1995)\tAction\n", "movies.csv"),
        ("movieId,title,genres\n1,Heat (1995),Action\n", "movies.csv.gz"),
    ],
    ids=["no-header", "tab-separated", "not-gzip-named-gz"],
)
def test_movielens_wrong_file_fails_with_bad_file_format(
    small_copy: Settings, tmp_path: Path, content: str, name: str
) -> None:
    """A file that is not a MovieLens movies.csv raises BadFileFormat; nothing changes."""
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    before = catalog_state(small_copy)

    with pytest.raises(BadFileFormat):
        import_movielens(small_copy, path)

    assert before == catalog_state(small_copy)


def test_truncated_gzip_fails_and_keeps_the_old_catalog(
    small_copy: Settings, tmp_path: Path
) -> None:
    """A dump cut off midway raises ImportFailed after some batches; the old catalog survives."""
    rows = [
        basic(f"tt{n:07d}", f"Generated Title Number {n} {n * 7919 % 10007}")
        for n in range(1, 5_001)
    ]
    full = write_gz(tmp_path / "full.tsv.gz", basics_text(rows)).read_bytes()
    cut = tmp_path / "title.basics.tsv.gz"
    cut.write_bytes(full[: len(full) * 2 // 3])
    settings = dataclasses.replace(small_copy, import_batch_size=500)
    before = catalog_state(settings)

    with pytest.raises(ImportFailed, match="damaged or truncated"):
        import_imdb(settings, [cut])

    assert before == catalog_state(settings)


def _corrupt_deflate_stream(data: bytes) -> bytes:
    """``data`` (a gzip file) with 8 bytes overwritten where zlib itself then fails."""
    for offset in range(64, len(data) - 64, 7):
        damaged = data[:offset] + b"\xff" * 8 + data[offset + 8 :]
        try:
            gzip.decompress(damaged)
        except zlib.error:
            return damaged
        except (OSError, EOFError):
            continue
    raise AssertionError("no corruption found that zlib reports as zlib.error")


def _imdb_dump(directory: Path, lines: int) -> tuple[Path, str]:
    rows = [basic(f"tt{n:07d}", f"Film Number {n}") for n in range(1, lines + 1)]
    return directory / "title.basics.tsv.gz", basics_text(rows)


def _movielens_dump(directory: Path, lines: int) -> tuple[Path, str]:
    rows = "".join(f"{n},Film Number {n} ({1900 + n % 120}),Drama\n" for n in range(1, lines + 1))
    return directory / "movies.csv.gz", "movieId,title,genres\n" + rows


@pytest.mark.parametrize(
    ("make_dump", "run_import"),
    [
        (_imdb_dump, lambda settings, path: import_imdb(settings, [path])),
        (_movielens_dump, import_movielens),
    ],
    ids=["imdb", "movielens"],
)
def test_corrupt_gzip_fails_with_import_failed(
    small_copy: Settings, tmp_path: Path, make_dump: Any, run_import: Any
) -> None:
    """A gzip whose deflate data is damaged (zlib.error) raises ImportFailed, catalog untouched."""
    path, text = make_dump(tmp_path, 3_000)
    path.write_bytes(_corrupt_deflate_stream(gzip.compress(text.encode(), mtime=0)))
    before = catalog_state(small_copy)

    with pytest.raises(ImportFailed):
        run_import(small_copy, path)

    assert before == catalog_state(small_copy)


@pytest.mark.parametrize(
    "error", [ImportFailed("reader gave up"), RuntimeError("disk on fire")], ids=repr
)
def test_exception_inside_record_iterator_rolls_back(
    small_copy: Settings, error: Exception
) -> None:
    """An exception from the records midway (after batches were written) rolls everything back."""
    settings = dataclasses.replace(small_copy, import_batch_size=10, import_max_shrink=1.0)
    before = catalog_state(settings)

    def records() -> Iterator[MovieRecord]:
        for n in range(55):
            yield MovieRecord(source_key=f"test:{n}", title=f"Matrix {n}", genres=("New",))
        raise error

    with pytest.raises(type(error)), CatalogImport(settings, "test") as job:
        job.add_alt_titles([("imdb:tt0000001", "Matrix Alt")])
        job.add_movies(records())

    assert before == catalog_state(settings)
    # The write lock was released: the next import goes through.
    with CatalogImport(settings, "test") as job:
        job.add_movies([MovieRecord(source_key="test:ok", title="Fine")])
    assert (2, 1) == (version(settings), len(catalog_state(settings)["movies"]))


def test_reader_sees_old_or_new_catalog_never_half(
    small_copy: Settings, paused_import: Any
) -> None:
    """While an import runs, readers see the old catalog; after commit, the new one."""
    settings = dataclasses.replace(small_copy, import_batch_size=10)
    pool = ReadPool(settings)

    def read(conn: sqlite3.Connection) -> tuple[int, int, str]:
        """Movies, words in the title index and the version, in the caller's transaction."""
        (count,) = conn.execute("SELECT count(*) FROM movies").fetchone()
        (terms,) = conn.execute("SELECT count(*) FROM title_vocab").fetchone()
        (value,) = conn.execute("SELECT value FROM catalog_meta WHERE key = 'version'").fetchone()
        return count, terms, value

    try:
        with paused_import(settings) as job:
            with pool.connection() as held:
                old = read(held)
                job.start()
                with pool.connection() as fresh:
                    during = read(fresh)
                job.finish()
                still = read(held)
            with pool.connection() as fresh:
                new = read(fresh)
    finally:
        pool.dispose()

    assert (30, "1") == (old[0], old[2])
    assert old == during
    assert old == still
    assert (200, 201, "2") == new


def test_engine_picks_up_a_new_catalog_version(small_copy: Settings) -> None:
    """After an import commits, refresh_if_changed loads the new catalog once."""
    small_copy = dataclasses.replace(small_copy, import_max_shrink=1.0)  # 30 -> 1 movie
    engine = open_blocking_engine(small_copy)
    try:
        assert (False, 1, 30) == (
            engine.refresh_if_changed(),
            engine.snapshot.version,
            engine.snapshot.movie_count,
        )
        with CatalogImport(small_copy, "test") as job:
            job.add_movies([MovieRecord(source_key="test:1", title="Only One", kind="episode")])
        assert (True, 2, 1, frozenset({"episode"})) == (
            engine.refresh_if_changed(),
            engine.snapshot.version,
            engine.snapshot.movie_count,
            engine.snapshot.kinds,
        )
        assert False is engine.refresh_if_changed()
    finally:
        engine.close()


def test_imdb_reimport_keeps_ids_and_drops_missing_titles(
    small_copy: Settings, imdb_writer: Any, small_titles: list[Any]
) -> None:
    """A re-import keeps ids of titles seen again, removes the rest, adds new ones after."""
    before = {m[1]: m[0] for m in catalog_state(small_copy)["movies"]}
    titles = [t for t in small_titles if t[0] != "tt0000013"]
    titles.append(("tt0000099", "movie", "Brand New", "Brand New", "2024", "99", "Drama", 6.0, 9))

    report = import_imdb(small_copy, list(imdb_writer(titles).values()))

    after = {m[1]: m[0] for m in catalog_state(small_copy)["movies"]}
    assert 2 == report.catalog_version
    assert {k: v for k, v in before.items() if k != "imdb:tt0000013"} == {
        k: v for k, v in after.items() if k != "imdb:tt0000099"
    }
    assert after["imdb:tt0000099"] > max(before.values())


def test_imdb_reimport_of_same_files_keeps_updated_at(
    small_copy: Settings, imdb_writer: Any
) -> None:
    """Importing identical dumps again changes no movie, so no updated_at moves."""
    conn = connect(small_copy)
    conn.execute("UPDATE movies SET updated_at = ?", (SENTINEL,))
    conn.commit()
    conn.close()

    import_imdb(small_copy, list(imdb_writer().values()))

    changed = [m[2] for m in catalog_state(small_copy)["movies"] if m[12] != SENTINEL]
    assert [] == changed


def test_imdb_reimport_moves_updated_at_of_changed_titles_only(
    small_copy: Settings, imdb_writer: Any, small_titles: list[Any]
) -> None:
    """A title whose data changed gets a new updated_at; the others keep theirs."""
    conn = connect(small_copy)
    conn.execute("UPDATE movies SET updated_at = ?", (SENTINEL,))
    conn.commit()
    conn.close()
    titles = [
        (*t[:2], "Heat (Director's Cut)", *t[3:]) if t[0] == "tt0000014" else t
        for t in small_titles
    ]

    import_imdb(small_copy, list(imdb_writer(titles).values()))

    changed = [m[2] for m in catalog_state(small_copy)["movies"] if m[12] != SENTINEL]
    assert ["Heat (Director's Cut)"] == changed


# -- MovieLens -------------------------------------------------------------------------------

MOVIELENS_CSV = """\
movieId,title,genres
1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy
2,"American President, The (1995)",Comedy|Drama|Romance
3,"City of Lost Children, The (Cité des enfants perdus, La) (1995)",Adventure|Fantasy|Sci-Fi
4,Seven (a.k.a. Se7en) (1995),Mystery|Thriller
5,Babylon 5,(no genres listed)
6,"Say ""Cheese"" (2001)",Comedy
7,(500) Days of Summer (2009),Comedy|Drama|Romance
abc,Bad Id (2000),Drama
8,Only Two Columns
9,"Extra, (2000)",Drama,Extra
10, (1999),Drama
11,Stranger Things (2016–),Drama|Fantasy
"""


@pytest.fixture
def movielens(tmp_path: Path) -> tuple[Settings, Any]:
    path = tmp_path / "movies.csv"
    path.write_text(MOVIELENS_CSV, encoding="utf-8")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'ml.db'}")
    return settings, import_movielens(settings, path)


@pytest.mark.parametrize(
    ("movie_id", "expected"),
    [
        ("1", ("Toy Story", 1995, "Adventure,Animation,Children,Comedy,Fantasy", [])),
        ("2", ("The American President", 1995, "Comedy,Drama,Romance", [])),
        (
            "3",
            (
                "The City of Lost Children",
                1995,
                "Adventure,Fantasy,Sci-Fi",
                ["La Cité des enfants perdus"],
            ),
        ),
        ("4", ("Seven", 1995, "Mystery,Thriller", ["Se7en"])),
        ("5", ("Babylon 5", None, "", [])),
        ("6", ('Say "Cheese"', 2001, "Comedy", [])),
        ("7", ("(500) Days of Summer", 2009, "Comedy,Drama,Romance", [])),
        ("11", ("Stranger Things", 2016, "Drama,Fantasy", [])),
    ],
)
def test_movielens_rows_become_movies(
    movielens: tuple[Settings, Any], movie_id: str, expected: tuple[Any, ...]
) -> None:
    """Year suffix, a.k.a. and parenthesised alternate titles, pipes and quotes are read."""
    found = movie(movielens[0], f"movielens:{movie_id}")
    assert found is not None
    assert expected == (found["title"], found["year"], found["genres"], found["alt_titles"])


def test_movielens_bad_rows_are_counted(movielens: tuple[Settings, Any]) -> None:
    """A bad movieId, a wrong column count and an empty title are skipped with their lines."""
    report = movielens[1]
    assert (12, 8, 4) == (report.rows_read, report.movies_written, report.bad_rows)
    assert [
        BadRow("movies.csv", 9, "bad movieId 'abc'"),
        BadRow("movies.csv", 10, "2 columns, expected 3"),
        BadRow("movies.csv", 11, "4 columns, expected 3"),
        BadRow("movies.csv", 12, "empty title"),
    ] == report.bad_row_samples


def test_movielens_gzip_and_truncation(tmp_path: Path) -> None:
    """movies.csv.gz is read; a truncated one raises ImportFailed."""
    rows = "".join(f"{n},Film Number {n} ({1900 + n % 120}),Drama\n" for n in range(1, 5_001))
    path = write_gz(tmp_path / "movies.csv.gz", "movieId,title,genres\n" + rows)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'ml.db'}", import_batch_size=500)
    assert 5_000 == import_movielens(settings, path).movies_written
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    before = catalog_state(settings)

    with pytest.raises(ImportFailed):
        import_movielens(settings, path)

    assert before == catalog_state(settings)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Toy Story (1995)", ("Toy Story", 1995, ())),
        ("Seven (a.k.a. Se7en) (1995)", ("Seven", 1995, ("Se7en",))),
        (
            "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
            ("The City of Lost Children", 1995, ("La Cité des enfants perdus",)),
        ),
        ("Shawshank Redemption, The (1994)", ("The Shawshank Redemption", 1994, ())),
        ("Babylon 5", ("Babylon 5", None, ())),
        ("1984 (1984)", ("1984", 1984, ())),
        ("(500) Days of Summer (2009)", ("(500) Days of Summer", 2009, ())),
        ("Cosmos (1980-)", ("Cosmos", 1980, ())),
        ("Stranger Things (2016–2025)", ("Stranger Things", 2016, ())),
        ("  Padded Title (2001)  ", ("Padded Title", 2001, ())),
        ("Avventura, L' (1960)", ("L'Avventura", 1960, ())),
        (
            "Fast & Furious (Fast and the Furious 4, The) (2009)",
            ("Fast & Furious", 2009, ("The Fast and the Furious 4",)),
        ),
        ("Year In Title 1999", ("Year In Title 1999", None, ())),
    ],
)
def test_split_title(raw: str, expected: tuple[str, int | None, tuple[str, ...]]) -> None:
    """split_title separates the title, the year and the alternate titles."""
    assert expected == split_title(raw)


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Matrix, The", "The Matrix"),
        ("Cité des enfants perdus, La", "La Cité des enfants perdus"),
        ("Avventura, L'", "L'Avventura"),
        ("Good, the Bad and the Ugly, The", "The Good, the Bad and the Ugly"),
        ("Boot, Das", "Das Boot"),
        ("Crouching Tiger, Hidden Dragon", "Crouching Tiger, Hidden Dragon"),
        ("The Matrix", "The Matrix"),
        ("Theory, Thea", "Theory, Thea"),
        (", The", ", The"),
        ("", ""),
    ],
)
def test_article_first(title: str, expected: str) -> None:
    """A trailing article moves to the front; anything else is left alone."""
    assert expected == article_first(title)


def test_import_leaves_one_title_index_segment_and_fts5_merge_defaults(
    sample_settings: Settings,
) -> None:
    """The title index is built without merges and optimized once into one segment; the
    merge settings later single-movie writes use are FTS5's defaults again."""
    conn = connect(sample_settings)
    try:
        config = dict(conn.execute("SELECT k, v FROM title_fts_config WHERE k != 'version'"))
        segments = conn.execute("SELECT count(DISTINCT segid) FROM title_fts_idx").fetchone()
    finally:
        conn.close()
    assert {"automerge": 4, "crisismerge": 16} == config
    assert (1,) == segments
