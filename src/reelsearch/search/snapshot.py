"""What the engine loads once per catalog version instead of once per request."""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reelsearch.errors import CatalogNotImported
from reelsearch.search.hit_rows import HitRows, open_sqlite_hit_rows
from reelsearch.search.postings import TitlePostings
from reelsearch.search.stored_postings import open_sqlite_postings
from reelsearch.search.stored_words import WORD_INDEX_SQL, SqliteWordFile, StoredWords
from reelsearch.search.typos import TypoIndex
from reelsearch.search.vocabulary import MAX_INITIALS, Vocabulary
from reelsearch.search.word_arrays import WordArrays
from reelsearch.search.word_store import build_word_arrays

if TYPE_CHECKING:
    from reelsearch.search.sql import Dialect, Reader

VERSION_SQL = "SELECT value FROM catalog_meta WHERE key = 'version'"
# The version the migration writes with the tables: no import or write committed since.
NOT_IMPORTED = 0
IMPORTED_AT_SQL = "SELECT value FROM catalog_meta WHERE key = 'imported_at'"
WORD_OVERLAY_SQL = "SELECT word, docs FROM word_overlay WHERE docs <> 0"
CHANGED_TITLES_SQL = (
    "SELECT m.norm_title, m.alt_norm_titles FROM catalog_changes AS c "
    "JOIN movies AS m ON m.id = c.movie_id WHERE c.version > ? AND c.version <= ?"
)
# The facet changes of the writes after one version up to another, with the first
# version whose records are complete (catalog/changes.py), in one statement.
FACET_CHANGES_SQL = """
SELECT c.facets_before, c.facets_after, m.value
FROM catalog_meta AS m
LEFT JOIN catalog_changes AS c ON c.version > ? AND c.version <= ?
WHERE m.key = 'changes_from'
"""
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
    # catalog_meta's "<file> <checksum>" of the stored index ``words`` is (None: built).
    stored_index: str | None = None
    # catalog_meta's import time (ISO 8601; "" for a catalog without one): the result
    # cache keys and Last-Modified, read here with the version, not on a connection of
    # its own per version change.
    imported_at: str = ""


async def read_catalog_facts(
    reader: Reader,
    dialect: Dialect,
    stored: StoredWords | None = None,
    previous: CatalogSnapshot | None = None,
) -> CatalogFacts:
    """Everything ``CatalogSnapshot.build`` needs, read through ``reader``; the words
    from the index the import stored (``stored``) when it is there and sound.

    With ``previous`` (the snapshot served until now): when only writes came since
    (same stored index, complete change records), its mapped words are kept and its
    catalog-wide facets moved by the changes, instead of mapping, checksumming and
    recounting everything (seconds at 1 M titles, docs/decisions/0014)."""

    async def pairs(sql: str) -> list[tuple[Any, Any]]:
        return [(row[0], row[1]) for row in await reader.rows(sql)]

    version = await read_version(reader)
    if previous is not None and previous.stored_index is not None and stored is not None:
        after_writes = await _facts_after_writes(reader, previous, version)
        if after_writes is not None:
            return after_writes
    count = await reader.row("SELECT count(*) FROM movies")
    assert count is not None
    words = await stored.open(reader, version) if stored is not None else None
    reference = await reader.row(WORD_INDEX_SQL) if words is not None else None
    # The overlay describes writes since the stored index: merged over it, never
    # over a vocabulary read live from the title index (that holds them already).
    overlay = await read_word_overlay(reader) if words is not None else {}
    imported_at = await reader.row(IMPORTED_AT_SQL)
    return CatalogFacts(
        imported_at=str(imported_at[0]) if imported_at else "",
        overlay=overlay,
        stored_index=str(reference[0]) if reference else None,
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


async def _facts_after_writes(
    reader: Reader, previous: CatalogSnapshot, version: int
) -> CatalogFacts | None:
    """``previous``'s facts moved by the writes since it, or None when something else
    changed (an import: another stored index; pruned or missing change records)."""
    reference = await reader.row(WORD_INDEX_SQL)
    if reference is None or str(reference[0]) != previous.stored_index:
        return None
    rows = await reader.rows(FACET_CHANGES_SQL, (previous.version, version))
    if not rows or previous.version < int(rows[0][2]):
        return None
    delta: Counter[str] = Counter()
    for before, after, _ in rows:
        delta.subtract(split_facet_tokens(before))
        delta.update(split_facet_tokens(after))
    kinds = set(previous.kinds)  # a kind whose last movie went stays: a filter finds none
    genres = Counter(previous.catalog_facets["genres"])
    decades = Counter({int(d): n for d, n in previous.catalog_facets["decade"].items()})
    for token, n in delta.items():
        kind, _, value = token.partition("=")
        if kind == "g":
            genres[value] += n
        elif kind == "d":
            decades[int(value)] += n
        elif kind == "k" and n > 0:
            kinds.add(value)
    overlay = await read_word_overlay(reader)
    return CatalogFacts(
        version=version,
        movie_count=previous.movie_count + delta["n"],
        vocabulary=[],
        # The previous ones plus those of the titles written since (a few primary-key
        # reads, not the 50 k titles with letter runs of a 1 M catalog).
        initialisms=sorted(
            previous.vocabulary.initialisms.union(
                initialisms_of(
                    title
                    for row in await reader.rows(CHANGED_TITLES_SQL, (previous.version, version))
                    for title in row
                    if title
                )
            )
        ),
        words=previous.vocabulary.arrays,
        overlay=overlay,
        stored_index=previous.stored_index,
        imported_at=previous.imported_at,  # writes since the import: the same import
        genres=[(row[0], row[1]) for row in await reader.rows("SELECT bit, name FROM genres")],
        # As the full read orders them: most movies first, then by name; decades ascending.
        genre_counts=sorted(
            ((g, n) for g, n in genres.items() if n > 0), key=lambda pair: (-pair[1], pair[0])
        ),  # fmt: skip
        decades=sorted((d, n) for d, n in decades.items() if n > 0),
        kinds=sorted(kinds),
    )


def facet_tokens(genres: Iterable[str], year: int | None, kind: str) -> str:
    """A movie's place in the catalog-wide facts, as change records keep it:
    ``"n\tk=movie\tg=Drama\tg=Comedy\td=1990"`` ("n": it exists; genre names hold no
    tab: TSV sources, checked documents)."""
    tokens = ["n", f"k={kind}", *(f"g={genre}" for genre in genres if genre)]
    if year is not None:
        tokens.append(f"d={year // 10 * 10}")
    return "\t".join(tokens)


def split_facet_tokens(stored: str | None) -> list[str]:
    return stored.split("\t") if stored else []


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
    """The catalog's version; CatalogNotImported for version 0, where nothing was committed
    (an interrupted first import leaves the schema alone: 0 hits for every search)."""
    found = await reader.row(VERSION_SQL)
    assert found is not None, "catalog_meta has no version: the schema was not created"
    version = int(found[0])
    if version == NOT_IMPORTED:
        raise CatalogNotImported()
    return version


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
    # The stored word index it maps ("<file> <checksum>"; None: built in memory).
    stored_index: str | None = None
    imported_at: str = ""  # the import it comes from (catalog_meta, ISO 8601)
    # Each word's titles as rank arrays, and the titles (None: FTS5 answers alone),
    # mapped from the stored file catalog_meta names as ``stored_postings``.
    postings: TitlePostings | None = None
    stored_postings: str | None = None
    # Every movie's hit row as the import stored it, less the writes since (None: a
    # page's rows are read by statement), mapped from the file catalog_meta names.
    hit_rows: HitRows | None = None

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
            stored_index=facts.stored_index,
            imported_at=facts.imported_at,
        )

    @classmethod
    def load(
        cls,
        conn: sqlite3.Connection,
        previous: CatalogSnapshot | None = None,
        *,
        postings_max_movies: int = 0,
    ) -> CatalogSnapshot:
        """Read the snapshot of a SQLite catalog, mapping the word index stored beside it
        (or keeping ``previous``'s when only writes came since); with the title postings
        stored beside it too (search/stored_postings.py) if it holds at most
        ``postings_max_movies`` titles, and every movie's hit row (search/hit_rows.py)."""
        from reelsearch.search.sql import SQLITE, SqliteReader, run_inline

        catalog = catalog_file(conn)
        stored = SqliteWordFile(catalog) if catalog is not None else None
        facts = run_inline(read_catalog_facts(SqliteReader(conn), SQLITE, stored, previous))
        snapshot = cls.build(facts)
        if stored is not None and facts.words is None:
            stored.restore(snapshot.vocabulary.arrays)
        if catalog is not None and facts.movie_count <= postings_max_movies:
            # In the same read transaction as the facts.
            found = open_sqlite_postings(
                conn,
                catalog,
                version=facts.version,
                words_index=facts.stored_index,
                vocabulary=snapshot.vocabulary,
                overlay=facts.overlay,
                previous=previous.stored_postings_pair() if previous is not None else None,
            )
            if found is not None:
                snapshot = snapshot.with_postings(*found)
        if catalog is not None:
            previous_rows = previous.hit_rows if previous is not None else None
            rows = open_sqlite_hit_rows(conn, catalog, previous_rows)
            snapshot = replace(snapshot, hit_rows=rows)
        return snapshot

    def with_postings(self, reference: str, postings: TitlePostings) -> CatalogSnapshot:
        """This snapshot with the stored title postings catalog_meta names as ``reference``."""
        return replace(self, stored_postings=reference, postings=postings)

    def without_postings(self) -> CatalogSnapshot:
        """This snapshot searching through the title index alone (itself if it has no
        postings): what a PostgreSQL page that reads its one statement searches."""
        if self.postings is None and self.hit_rows is None:
            return self
        # Nor hit rows: the PostgreSQL page's replay keys its answers on the rows it
        # must read (the one statement answers them; a snapshot whose pages take rows
        # from the mapped file must not reach it).
        return replace(self, postings=None, stored_postings=None, hit_rows=None)

    def stored_postings_pair(self) -> tuple[str, TitlePostings] | None:
        """``(reference, postings)`` of the stored postings this snapshot maps, if any."""
        if self.stored_postings is None or self.postings is None:
            return None
        return self.stored_postings, self.postings

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
            postings=None,  # words without their titles: only FTS5 knows where they are
            stored_postings=None,
            hit_rows=None,  # neither are the rows of the titles written
        )


def catalog_file(conn: sqlite3.Connection) -> Path | None:
    """The file of a SQLite connection's main database (None for one in memory)."""
    for _, name, path in conn.execute("PRAGMA database_list"):
        if name == "main" and path:
            return Path(path)
    return None
