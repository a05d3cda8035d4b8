"""Read reelsearch's movie catalog (SQLite, or PostgreSQL), read-only, for the bench.

Why: every engine must be fed the same movies and judged on queries drawn from them, so the
catalog reelsearch serves is the single source of truth. SQLite is opened with ``mode=ro`` and
PostgreSQL read in a read-only transaction, so the bench can never alter a database under
test. ``compare_catalogs`` checks that a PostgreSQL catalog holds exactly the SQLite one's
movies (same ids too), which recall on both needs: a query names its movie by id.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MOVIE_COLUMNS = "id, title, year, rating, votes, genres, kind"


@dataclass(frozen=True, slots=True)
class Movie:
    id: int
    title: str
    year: int | None
    rating: float | None
    votes: int
    genres: tuple[str, ...]
    kind: str


def load_movies(db_path: Path) -> list[Movie]:
    """Return every movie in ``db_path``'s ``movies`` table, ordered by id."""
    rows = _read_sqlite(db_path, f"SELECT {MOVIE_COLUMNS} FROM movies ORDER BY id")
    return [_movie(row) for row in rows]


def load_source_ids(db_path: Path) -> dict[str, int]:
    """``source_key`` (e.g. ``ggplot2movies:32710``) -> movie id, for sets that name movies
    by their source row rather than by an id that only one import assigned."""
    return dict(_read_sqlite(db_path, "SELECT source_key, id FROM movies"))


def load_alt_titles(db_path: Path) -> dict[int, list[str]]:
    """movie id -> its alternate titles (the ``alt_titles`` table; empty if there is none)."""
    out: dict[int, list[str]] = {}
    try:
        rows = _read_sqlite(db_path, "SELECT movie_id, title FROM alt_titles ORDER BY movie_id")
    except sqlite3.OperationalError as exc:  # a stand-in catalog without the table
        if "no such table" not in str(exc):
            raise
        return out
    for movie_id, title in rows:
        out.setdefault(int(movie_id), []).append(str(title))
    return out


def _read_sqlite(db_path: Path, sql: str) -> list[Any]:
    if not db_path.is_file():
        raise FileNotFoundError(f"catalog not found: {db_path}")
    conn = sqlite3.connect(f"file:{db_path.resolve()}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def libpq_dsn(database_url: str) -> str:
    """``postgresql+asyncpg://u@h:p/db`` (reelsearch's spelling) as libpq takes it."""
    scheme, sep, rest = database_url.partition("://")
    return f"postgresql://{rest}" if sep and scheme.startswith("postgres") else database_url


def iter_movies_pg(database_url: str, batch: int = 20_000) -> Iterator[Movie]:
    """Every movie of a PostgreSQL catalog, ordered by id, streamed (server-side cursor)."""
    import psycopg  # only the PostgreSQL runs need it

    with psycopg.connect(libpq_dsn(database_url)) as conn:
        conn.read_only = True
        with conn.transaction(), conn.cursor(name="bench_movies") as cur:
            cur.itersize = batch
            cur.execute(f"SELECT {MOVIE_COLUMNS} FROM movies ORDER BY id")
            for row in cur:
                yield _movie(row)


def pg_started_at(database_url: str) -> str:
    """When the PostgreSQL server last started: a change during a run means it restarted."""
    import psycopg

    with psycopg.connect(libpq_dsn(database_url)) as conn:
        row = conn.execute("SELECT pg_postmaster_start_time()::text").fetchone()
    return str(row[0]) if row else "?"


def load_movies_pg(database_url: str) -> list[Movie]:
    return list(iter_movies_pg(database_url))


def compare_catalogs(movies: Sequence[Movie], others: Iterable[Movie]) -> tuple[int, int]:
    """(movies in ``others``, how many of them differ from ``movies`` or are missing there);
    both in id order. Equal catalogs give ``(len(movies), 0)``."""
    by_id = {m.id: m for m in movies}
    seen = differing = 0
    for other in others:
        seen += 1
        differing += by_id.get(other.id) != other
    return seen, differing + max(0, len(movies) - seen)


def _movie(row: Sequence[Any]) -> Movie:
    mid, title, year, rating, votes, genres, kind = row
    return Movie(
        id=int(mid),
        title=str(title),
        year=None if year is None else int(year),
        rating=None if rating is None else float(rating),
        votes=int(votes),
        genres=tuple(g.strip() for g in str(genres).split(",") if g.strip()),
        kind=str(kind),
    )
