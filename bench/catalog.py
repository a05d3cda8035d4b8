"""Read reelsearch's movie catalog (SQLite), read-only, for the bench.

Why: both engines must be fed the same movies and judged on queries drawn from them, so the
catalog reelsearch serves is the single source of truth. It is opened with ``mode=ro`` so the
bench can never alter the database under test.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path


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
    if not db_path.is_file():
        raise FileNotFoundError(f"catalog not found: {db_path}")
    uri = f"file:{db_path.resolve()}?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        rows = conn.execute(
            "SELECT id, title, year, rating, votes, genres, kind FROM movies ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    return [
        Movie(
            id=int(mid),
            title=str(title),
            year=None if year is None else int(year),
            rating=None if rating is None else float(rating),
            votes=int(votes),
            genres=tuple(g.strip() for g in str(genres).split(",") if g.strip()),
            kind=str(kind),
        )
        for mid, title, year, rating, votes, genres, kind in rows
    ]
