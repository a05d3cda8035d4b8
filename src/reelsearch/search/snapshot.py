"""What the engine loads once per catalog version instead of once per request."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reelsearch.search.stored_words import SqliteWordFile, StoredWords
from reelsearch.search.typos import TypoIndex
from reelsearch.search.vocabulary import MAX_INITIALS, Vocabulary
from reelsearch.search.word_arrays import WordArrays
from reelsearch.search.word_store import build_word_arrays

if TYPE_CHECKING:
    from reelsearch.search.sql import Dialect, Reader

VERSION_SQL = "SELECT value FROM catalog_meta WHERE key = 'version'"
WORD_OVERLAY_SQL = "SELECT word, docs FROM word_overlay WHERE docs <> 0"
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
    vocabulary: list[tuple[str, int]]  # empty when ``words`` holds them
    initialisms: list[str]
    genres: list[tuple[int, str]]
    genre_counts: list[tuple[str, int]]
    decades: list[tuple[int, int]]
    kinds: list[str]
    words: WordArrays | None = None  # the stored word index, mapped; None: build it
    # Titles added (negative: removed) per word by writes since ``words`` was stored.
    overlay: Mapping[str, int] = field(default_factory=dict)


async def read_catalog_facts(
    reader: Reader, dialect: Dialect, stored: StoredWords | None = None
) -> CatalogFacts:
    """Everything ``CatalogSnapshot.build`` needs, read through ``reader``; the words
    from the index the import stored (``stored``) when it is there and sound."""

    async def pairs(sql: str) -> list[tuple[Any, Any]]:
        return [(row[0], row[1]) for row in await reader.rows(sql)]

    count = await reader.row("SELECT count(*) FROM movies")
    assert count is not None
    version = await read_version(reader)
    words = await stored.open(reader, version) if stored is not None else None
    # The overlay describes writes since the stored index: merged over it, never
    # over a vocabulary read live from the title index (that holds them already).
    overlay = await read_word_overlay(reader) if words is not None else {}
    return CatalogFacts(
        overlay=overlay,
        version=version,
        movie_count=int(count[0]),
        vocabulary=[] if words is not None else await pairs(dialect.vocabulary_sql),
        # Written titles may spell new initialisms: read them all (a partial index).
        initialisms=[] if words is not None and not overlay else await read_initialisms(reader),
        words=words,
        genres=await pairs("SELECT bit, name FROM genres"),
        genre_counts=await pairs(
            "SELECT g.name, count(*) FROM movie_genres AS mg JOIN genres AS g "
            "ON g.bit = mg.genre_bit GROUP BY g.name ORDER BY count(*) DESC, g.name"
        ),
        decades=await pairs(dialect.decades_sql),
        kinds=[row[0] for row in await reader.rows("SELECT DISTINCT kind FROM movies")],
    )


async def read_word_overlay(reader: Reader) -> dict[str, int]:
    """``word_overlay`` (catalog/changes.py): none in a catalog from before migration 0005."""
    if await reader.row("SELECT value FROM catalog_meta WHERE key = 'changes_from'") is None:
        return {}
    return {str(row[0]): int(row[1]) for row in await reader.rows(WORD_OVERLAY_SQL)}


async def read_initialisms(reader: Reader) -> list[str]:
    """The initialisms of the catalog's titles."""
    rows = await reader.rows(INITIALISM_TITLES_SQL)
    return initialisms_of(title for row in rows for title in row if title is not None)


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
        """The snapshot over the stored word index, or over one built in memory
        (CPU work: seconds for a million titles) when there is none."""
        words = facts.words
        if words is None:
            words = build_word_arrays(facts.vocabulary, facts.initialisms)
        return cls(
            version=facts.version,
            movie_count=facts.movie_count,
            # The writes since the import, in a small in-memory overlay (empty: none).
            typos=TypoIndex(words, facts.overlay),
            vocabulary=Vocabulary(initialisms=facts.initialisms, arrays=words, added=facts.overlay),
            genres={name.lower(): (bit, name) for bit, name in facts.genres},
            kinds=frozenset(facts.kinds),
            catalog_facets={
                "genres": dict(facts.genre_counts),
                "decade": {str(decade): count for decade, count in facts.decades},
            },
        )

    @classmethod
    def load(cls, conn: sqlite3.Connection) -> CatalogSnapshot:
        """Read the snapshot of a SQLite catalog, mapping the word index stored beside it."""
        from reelsearch.search.sql import SQLITE, SqliteReader, run_inline

        catalog = catalog_file(conn)
        stored = SqliteWordFile(catalog) if catalog is not None else None
        facts = run_inline(read_catalog_facts(SqliteReader(conn), SQLITE, stored))
        snapshot = cls.build(facts)
        if stored is not None and facts.words is None:
            stored.restore(snapshot.vocabulary.arrays)
        return snapshot

    def with_added_words(
        self, words: Mapping[str, int], initialisms: Iterable[str] = ()
    ) -> CatalogSnapshot:
        """This snapshot plus words written since the import (word -> titles added).

        The mapped base is shared; the additions live in a small in-memory
        overlay of the vocabulary and the typo index, which every lookup merges.
        """
        return replace(
            self,
            vocabulary=self.vocabulary.with_added(words, initialisms),
            typos=self.typos.with_added(words),
        )


def catalog_file(conn: sqlite3.Connection) -> Path | None:
    """The file of a SQLite connection's main database (None for one in memory)."""
    for _, name, path in conn.execute("PRAGMA database_list"):
        if name == "main" and path:
            return Path(path)
    return None
