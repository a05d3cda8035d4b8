"""Which movies each catalog write changed, and the word overlay it leaves behind.

Every write through the documents API (and the upstream write-back) commits,
with the movies it changed and the version it bumps to:

- one ``catalog_changes`` row per changed movie: the write version, the
  movie id and the words of all its titles (title and alternates, as the
  title index holds them) before and after the change. A result cache reads
  them with :func:`changes_since` to drop exactly the answers those words
  could appear in, instead of everything;
- the change in title counts per word in ``word_overlay``, which readers
  merge over the word index the last import stored (``search/snapshot.py``),
  so new words are found, by typo too, without rebuilding the index.

An import rebuilds the index and replaces every movie: it empties both tables
and records its own version as ``changes_from`` (versions after it have
complete records). Pruning keeps the table bounded the same way: it drops
whole versions, oldest first, and moves ``changes_from`` past them. A caller
asking for changes since a version before ``changes_from`` gets
:class:`ChangesUnavailable`: it must treat everything as changed.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reelsearch.errors import CatalogError
from reelsearch.search.readers import Reader, SqliteReader, numbered

# Change records kept at most (plus the writes of up to PRUNE_EVERY versions):
# enough for any poller to catch up after minutes of heavy writing.
MAX_CHANGE_RECORDS = 100_000
# Pruning counts rows: it runs on one write version in this many, not on every write.
PRUNE_EVERY = 50

_CHANGES_SQL = """
SELECT c.version, c.movie_id, c.words_before, c.words_after, m.value
FROM catalog_meta AS m
LEFT JOIN catalog_changes AS c ON c.version > ? AND c.version <= ?
WHERE m.key = 'changes_from'
ORDER BY c.version, c.movie_id
"""
# Newest versions first: the version at which MAX_CHANGE_RECORDS rows are passed.
PRUNE_CUTOFF_SQL = "SELECT version FROM catalog_changes ORDER BY version DESC LIMIT 1 OFFSET ?"
_ADD_OVERLAY_SQLITE = (
    "INSERT INTO word_overlay (word, docs) VALUES (?, ?) "
    "ON CONFLICT (word) DO UPDATE SET docs = word_overlay.docs + excluded.docs"
)
_ADD_OVERLAY_POSTGRES = """
INSERT INTO word_overlay (word, docs)
SELECT word, docs FROM unnest($1::text[], $2::int[]) AS delta (word, docs) ORDER BY word
ON CONFLICT (word) DO UPDATE SET docs = word_overlay.docs + excluded.docs
"""
# No version is this high: "every version" for an open upper bound.
_NO_LIMIT = 2**62


@dataclass(frozen=True, slots=True)
class MovieChange:
    """One movie changed by the write that made catalog ``version``.

    ``words_before`` is empty for a movie the write added, ``words_after``
    for one it deleted; both hold every word of all its titles.
    """

    version: int
    movie_id: int
    words_before: frozenset[str]
    words_after: frozenset[str]


class ChangesUnavailable(CatalogError):
    """The records do not reach back that far (an import or pruning since): assume all changed."""

    def __init__(self, since: int, changes_from: int) -> None:
        super().__init__(
            f"changes since catalog version {since} are not recorded (complete only after "
            f"version {changes_from}: an import or pruning came between)"
        )
        self.since = since
        self.changes_from = changes_from


async def changes_since(
    source: Any, version: int, *, until: int | None = None
) -> list[MovieChange]:
    """The movies changed by write versions after ``version`` (up to ``until``), oldest first.

    ``source`` is a search engine (``app.state.engine``, either backend), a
    ``Reader``, a sqlite3 connection or an asyncpg connection. Raises
    :class:`ChangesUnavailable` when the records after ``version`` are not
    complete. One statement, so the records and ``changes_from`` agree.
    """
    params = (version, _NO_LIMIT if until is None else until)
    rows = await _read(source, _CHANGES_SQL, params)
    if not rows:
        raise CatalogError("catalog_meta has no changes_from: the catalog needs migrating")
    changes_from = int(rows[0][4])
    if version < changes_from:
        raise ChangesUnavailable(version, changes_from)
    return [
        MovieChange(int(row[0]), int(row[1]), split_words(row[2]), split_words(row[3]))
        for row in rows
        if row[0] is not None
    ]


async def _read(source: Any, sql: str, params: tuple[Any, ...]) -> list[Any]:
    if isinstance(source, sqlite3.Connection):
        return await SqliteReader(source).rows(sql, params)
    if hasattr(source, "rows"):  # a Reader
        reader: Reader = source
        return await reader.rows(sql, params)
    pool = getattr(source, "pool", None)
    if pool is not None:  # a search engine: its read pool
        from reelsearch.db import ReadPool

        if isinstance(pool, ReadPool):
            with pool.connection() as conn:
                return await SqliteReader(conn).rows(sql, params)
        from reelsearch.search.readers import PostgresReader

        async with pool.connection() as conn:
            return await PostgresReader(conn).rows(sql, params)
    if hasattr(source, "fetch"):  # an asyncpg connection
        from reelsearch.search.readers import PostgresReader

        return await PostgresReader(source).rows(sql, params)
    raise TypeError(f"cannot read catalog changes through {type(source).__name__}")


def join_words(words: Iterable[str]) -> str:
    """A word set as stored: sorted, space-separated (normalized words hold no space)."""
    return " ".join(sorted(words))


def split_words(stored: str | None) -> frozenset[str]:
    return frozenset(stored.split()) if stored else frozenset()


@dataclass(slots=True)
class ChangeLog:
    """The changes of one write transaction, merged per movie (first before, last after)."""

    changes: dict[int, tuple[frozenset[str], frozenset[str]]]
    facets: dict[int, tuple[str, str]]  # movie id -> facet tokens before, after

    def __init__(self) -> None:
        self.changes = {}
        self.facets = {}

    def add(
        self,
        movie_id: int,
        before: Iterable[str],
        after: Iterable[str],
        facets_before: str = "",
        facets_after: str = "",
    ) -> None:
        """Record a change of ``movie_id``: its title words and facet tokens
        (``search.snapshot.facet_tokens``) before and after."""
        earlier = self.changes.get(movie_id)
        first = earlier[0] if earlier is not None else frozenset(before)
        self.changes[movie_id] = (first, frozenset(after))
        first_facets = self.facets[movie_id][0] if movie_id in self.facets else facets_before
        self.facets[movie_id] = (first_facets, facets_after)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def rows(self, version: int) -> list[tuple[int, int, str, str, str, str]]:
        """``catalog_changes`` rows, in movie id order."""
        return [
            (version, movie_id, join_words(before), join_words(after),
             *self.facets.get(movie_id, ("", "")))
            for movie_id, (before, after) in sorted(self.changes.items())
        ]  # fmt: skip

    def word_deltas(self) -> list[tuple[str, int]]:
        """Titles gained (lost: negative) per word, in word order, zeros left out."""
        delta: Counter[str] = Counter()
        for before, after in self.changes.values():
            delta.update(after - before)
            delta.subtract(before - after)
        return [(word, n) for word, n in sorted(delta.items()) if n]


def is_prune_due(version: int) -> bool:
    return version % PRUNE_EVERY == 0


def overlay_from_rows(rows: Iterable[tuple[str, int]]) -> Mapping[str, int]:
    """``word_overlay`` rows as word -> titles added (negative: removed) since the index."""
    return {str(word): int(docs) for word, docs in rows if docs}


def record_sqlite_changes(conn: sqlite3.Connection, version: int, log: ChangeLog) -> None:
    """Change records and word overlay of write ``version``; prune now and then."""
    conn.executemany(
        "INSERT OR REPLACE INTO catalog_changes (version, movie_id, words_before, words_after, "
        "facets_before, facets_after) VALUES (?, ?, ?, ?, ?, ?)",
        log.rows(version),
    )
    deltas = log.word_deltas()
    conn.executemany(_ADD_OVERLAY_SQLITE, deltas)
    conn.executemany(
        "DELETE FROM word_overlay WHERE word = ? AND docs = 0", [(word,) for word, _ in deltas]
    )
    if is_prune_due(version):
        cutoff = conn.execute(PRUNE_CUTOFF_SQL, (MAX_CHANGE_RECORDS,)).fetchone()
        if cutoff is not None:
            conn.execute("DELETE FROM catalog_changes WHERE version <= ?", (cutoff[0],))
            conn.execute(
                "UPDATE catalog_meta SET value = ? WHERE key = 'changes_from' "
                "AND CAST(value AS INTEGER) < ?",
                (str(cutoff[0]), cutoff[0]),
            )


async def record_postgres_changes(conn: Any, version: int, log: ChangeLog) -> None:
    """Change records and word overlay of write ``version``; prune now and then."""
    await conn.executemany(
        "INSERT INTO catalog_changes (version, movie_id, words_before, words_after, "
        "facets_before, facets_after) VALUES ($1, $2, $3, $4, $5, $6) "
        "ON CONFLICT (version, movie_id) DO UPDATE SET words_after = excluded.words_after, "
        "facets_after = excluded.facets_after",
        log.rows(version),
    )
    deltas = log.word_deltas()
    if deltas:
        await conn.execute(_ADD_OVERLAY_POSTGRES, [w for w, _ in deltas], [n for _, n in deltas])
        await conn.execute(
            "DELETE FROM word_overlay WHERE word = ANY($1::text[]) AND docs = 0",
            [w for w, _ in deltas],
        )
    if is_prune_due(version):
        cutoff = await conn.fetchval(numbered(PRUNE_CUTOFF_SQL), MAX_CHANGE_RECORDS)
        if cutoff is not None:
            await conn.execute("DELETE FROM catalog_changes WHERE version <= $1", cutoff)
            await conn.execute(
                "UPDATE catalog_meta SET value = $1 WHERE key = 'changes_from' "
                "AND value::bigint < $2",
                str(cutoff),
                cutoff,
            )
