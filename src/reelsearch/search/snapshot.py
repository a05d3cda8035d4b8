"""What the engine loads once per catalog version instead of once per request."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reelsearch.search.typos import TypoIndex
from reelsearch.search.vocabulary import MAX_INITIALS, Vocabulary

if TYPE_CHECKING:
    from reelsearch.search.sql import Dialect, Reader

VERSION_SQL = "SELECT value FROM catalog_meta WHERE key = 'version'"
# Titles with two one-letter words side by side: where initialisms may be
# (LIKE's "_" is any one character). Read through the partial index of
# catalog migration 0003, whose condition this repeats word for word.
INITIALISM_TITLES_SQL = (
    "SELECT norm_title, alt_norm_titles FROM movies "
    "WHERE (' ' || norm_title || ' ') LIKE '% _ _ %' "
    "OR (' ' || alt_norm_titles || ' ') LIKE '% _ _ %'"
)
# Two or more one-letter ASCII words in a row, as whole words.
_LETTER_RUN = re.compile(r"(?<![^ ])[a-z](?: [a-z])+(?![^ ])")


@dataclass(frozen=True, slots=True)
class CatalogFacts:
    """The rows a snapshot is built from, as read in one consistent transaction."""

    version: int
    movie_count: int
    vocabulary: list[tuple[str, int]]
    initialisms: list[str]
    genres: list[tuple[int, str]]
    genre_counts: list[tuple[str, int]]
    decades: list[tuple[int, int]]
    kinds: list[str]


async def read_catalog_facts(reader: Reader, dialect: Dialect) -> CatalogFacts:
    """Everything ``CatalogSnapshot.build`` needs, read through ``reader``."""

    async def pairs(sql: str) -> list[tuple[Any, Any]]:
        return [(row[0], row[1]) for row in await reader.rows(sql)]

    count = await reader.row("SELECT count(*) FROM movies")
    assert count is not None
    return CatalogFacts(
        version=await read_version(reader),
        movie_count=int(count[0]),
        vocabulary=await pairs(dialect.vocabulary_sql),
        initialisms=initialisms_of(
            title
            for row in await reader.rows(INITIALISM_TITLES_SQL)
            for title in row
            if title is not None
        ),
        genres=await pairs("SELECT bit, name FROM genres"),
        genre_counts=await pairs(
            "SELECT g.name, count(*) FROM movie_genres AS mg JOIN genres AS g "
            "ON g.bit = mg.genre_bit GROUP BY g.name ORDER BY count(*) DESC, g.name"
        ),
        decades=await pairs(dialect.decades_sql),
        kinds=[row[0] for row in await reader.rows("SELECT DISTINCT kind FROM movies")],
    )


def initialisms_of(titles: Iterable[str]) -> list[str]:
    """Runs of one-letter words in normalized titles, joined: "s w a t" -> "swat"."""
    found: set[str] = set()
    for title in titles:
        for run in _LETTER_RUN.findall(title):
            letters = run.replace(" ", "")
            if len(letters) <= MAX_INITIALS:
                found.add(letters)
    return sorted(found)


async def read_version(reader: Reader) -> int:
    found = await reader.row(VERSION_SQL)
    assert found is not None, "catalog_meta has no version: the schema was not created"
    return int(found[0])


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
    def build(cls, facts: CatalogFacts) -> CatalogSnapshot:
        """Build the in-memory indexes (CPU work: seconds for a million titles)."""
        vocabulary: Sequence[tuple[str, int]] = facts.vocabulary
        return cls(
            version=facts.version,
            movie_count=facts.movie_count,
            typos=TypoIndex(vocabulary),
            vocabulary=Vocabulary(vocabulary, facts.initialisms),
            genres={name.lower(): (bit, name) for bit, name in facts.genres},
            kinds=frozenset(facts.kinds),
            catalog_facets={
                "genres": dict(facts.genre_counts),
                "decade": {str(decade): count for decade, count in facts.decades},
            },
        )

    @classmethod
    def load(cls, conn: sqlite3.Connection) -> CatalogSnapshot:
        """Read and build the snapshot of a SQLite catalog."""
        from reelsearch.search.sql import SQLITE, SqliteReader, run_inline

        return cls.build(run_inline(read_catalog_facts(SqliteReader(conn), SQLITE)))
