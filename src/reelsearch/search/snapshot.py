"""What the engine loads once per catalog version instead of once per request."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from reelsearch.search.typos import TypoIndex
from reelsearch.search.vocabulary import Vocabulary


@dataclass(frozen=True, slots=True)
class CatalogSnapshot:
    """Vocabulary, genres, kinds and whole-catalog facets of one catalog version."""

    version: int
    movie_count: int
    typos: TypoIndex
    vocabulary: Vocabulary  # every word of every title: finished words and prefix completions
    # lower-cased name -> (bit in genre_mask, display name)
    genres: dict[str, tuple[int, str]]
    kinds: frozenset[str]
    # Facets of the unfiltered catalog: the answer to an empty search.
    catalog_facets: dict[str, dict[str, int]]

    @classmethod
    def load(cls, conn: sqlite3.Connection) -> CatalogSnapshot:
        version = int(conn.execute("SELECT value FROM catalog_meta WHERE key = 'version'")
                      .fetchone()[0])  # fmt: skip
        genres = {
            name.lower(): (bit, name) for bit, name in conn.execute("SELECT bit, name FROM genres")
        }
        genre_counts = dict(
            conn.execute(
                "SELECT g.name, count(*) FROM movie_genres AS mg JOIN genres AS g "
                "ON g.bit = mg.genre_bit GROUP BY g.name ORDER BY count(*) DESC, g.name"
            )
        )
        decades = {
            str(decade): count
            for decade, count in conn.execute(
                # The (year, rank) index holds every year: read it, not the table.
                "SELECT year / 10 * 10 AS decade, count(*) FROM movies INDEXED BY ix_movies_year "
                "WHERE year IS NOT NULL GROUP BY decade ORDER BY decade"
            )
        }
        vocabulary = conn.execute("SELECT term, doc FROM title_vocab").fetchall()
        return cls(
            version=version,
            movie_count=conn.execute("SELECT count(*) FROM movies").fetchone()[0],
            typos=TypoIndex(vocabulary),
            vocabulary=Vocabulary(vocabulary),
            genres=genres,
            kinds=frozenset(k for (k,) in conn.execute("SELECT DISTINCT kind FROM movies")),
            catalog_facets={"genres": genre_counts, "decade": decades},
        )


def read_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT value FROM catalog_meta WHERE key = 'version'").fetchone()[0])
