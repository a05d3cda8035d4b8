"""The catalog writes since the import, as a delta over its stored title postings.

The stored postings (``postings_store.py``) are the import's titles; a write
through the documents API (``catalog/documents_sqlite.py``) changes a few
titles at their ranks: a replaced movie keeps its rank, a new one takes the
rank after the last, a deleted one leaves its rank empty (and the next new
movie may take it). The change records since the import
(``catalog/changes.py``: per write, each changed movie's id and its title
words before) say which movies changed; from them:

- the ranks now holding a changed movie: its current title document;
- the ranks the changed movies held at the import, found in the stored
  postings from the words their first record says they had then (the
  intersection of those words' ranks, kept where the stored document has
  exactly those words).

Each such rank whose stored document is not the current one is stale: its
stored postings are dropped and the current document, if any, added. That is
a few primary-key reads per changed movie, not a rebuild. Records pruned past
the import (more than ``MAX_CHANGE_RECORDS`` changes since it) cannot say
this: then there is no delta and the title index (FTS5, or PostgreSQL's
tsvector) answers alone until the next import.
Last, each word the word overlay counts must have as many titles here as the
title index has: any difference and the postings are not used.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import reduce
from typing import TYPE_CHECKING

import numpy as np

from reelsearch.search.normalize import JOINED_TITLES, TITLE_SEPARATOR
from reelsearch.search.postings import PostingsDelta, Ranks, TitlePostings

if TYPE_CHECKING:
    from reelsearch.search.readers import Reader, Row

log = logging.getLogger(__name__)

CHANGES_FROM_SQL = "SELECT value FROM catalog_meta WHERE key = 'changes_from'"
# Every change since the import, oldest first, with the movie's row now (none: deleted).
CHANGED_MOVIES_SQL = """
SELECT c.movie_id, c.words_before, m.search_rank
FROM catalog_changes AS c LEFT JOIN movies AS m ON m.id = c.movie_id
WHERE c.version > ? ORDER BY c.version, c.movie_id
"""
TITLES_AT_SQL = (
    "SELECT search_rank, norm_title, alt_norm_titles FROM movies WHERE search_rank IN ({})"
)
# Ranks per statement (SQLite's default limit of bound variables is 32,766; a few
# statement shapes for asyncpg to prepare).
_RANKS_PER_READ = 500


async def read_postings_delta(
    reader: Reader, stored: TitlePostings, since: int, overlay: Mapping[str, int]
) -> TitlePostings | None:
    """``stored`` (the import's postings, no delta) with the delta of the writes after
    catalog version ``since`` (the import's), read through ``reader`` (either backend,
    in the snapshot's read transaction), or None when the change records do not
    reach back to it or the result disagrees with ``overlay`` (word -> titles added)."""
    changes_from = await reader.row(CHANGES_FROM_SQL)
    if changes_from is None or int(changes_from[0]) > since:
        _refuse(f"the change records since catalog version {since} were pruned")
        return None
    first_words: dict[int, str] = {}
    ranks: set[int] = set()
    for movie_id, words_before, rank in await reader.rows(CHANGED_MOVIES_SQL, (since,)):
        first_words.setdefault(movie_id, words_before or "")
        if rank is not None:
            ranks.add(int(rank))
    if not first_words:
        return _checked(stored, stored, overlay)
    for words in first_words.values():
        ranks.update(_ranks_stored_with(stored, words.split()))
    current = await _titles_at(reader, sorted(ranks))
    stale = [rank for rank in ranks if stored.stored_document(rank) not in ("", current.get(rank))]
    documents = {
        rank: document
        for rank, document in current.items()
        if document != stored.stored_document(rank)
    }
    delta = PostingsDelta(np.array(sorted(stale), dtype=np.int32), documents)
    return _checked(stored.with_delta(delta), stored, overlay)


def _ranks_stored_with(stored: TitlePostings, words: list[str]) -> list[int]:
    """The ranks whose stored document has exactly ``words`` (a title's words before a
    change; none for a movie that did not exist at the import)."""
    if not words:
        return []
    arrays: list[Ranks] = sorted((stored.word(word) for word in words), key=len)
    candidates = reduce(lambda a, b: np.intersect1d(a, b, assume_unique=True), arrays, arrays[0])
    expected = frozenset(words)
    return [
        rank
        for rank in candidates.tolist()
        if frozenset(stored.stored_document(rank).split()) - {TITLE_SEPARATOR} == expected
    ]


async def _titles_at(reader: Reader, ranks: list[int]) -> dict[int, str]:
    """rank -> title document of the movies at ``ranks`` now (primary-key-like reads
    through the rank index)."""
    return {
        int(rank): norm_title + JOINED_TITLES + alt_norm_titles if alt_norm_titles else norm_title
        for rank, norm_title, alt_norm_titles in await rows_at_ranks(reader, TITLES_AT_SQL, ranks)
    }


async def rows_at_ranks(reader: Reader, sql: str, ranks: Sequence[int]) -> list[Row]:
    """The rows ``sql`` (its ``IN ({})`` filled with one mark per rank) reads for
    ``ranks``, in chunks of ``_RANKS_PER_READ``: a few statement shapes, under SQLite's
    limit of bound variables."""
    found: list[Row] = []
    for start in range(0, len(ranks), _RANKS_PER_READ):
        chunk = ranks[start : start + _RANKS_PER_READ]
        found += await reader.rows(sql.format(", ".join("?" * len(chunk))), chunk)
    return found


def _checked(
    postings: TitlePostings, stored: TitlePostings, overlay: Mapping[str, int]
) -> TitlePostings | None:
    """``postings`` if every overlay word lists as many titles as the import's
    postings plus the overlay's count (the title index's own count); else None."""
    for word, added in overlay.items():
        expected = len(stored.word(word)) + added
        if len(postings.word(word)) != expected:
            _refuse(f"the word {word!r} has another count than the title index's")
            return None
    return postings


def _refuse(reason: str) -> None:
    log.warning("title postings not used, searches read FTS5 only: %s", reason)
