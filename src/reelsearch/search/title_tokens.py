"""The catalog's title documents split into words, before a word index numbers them.

What the title postings (``postings_store.py``) are made of, and, at import,
what the word index can be built from before FTS5 has finished indexing the
same documents (``catalog/word_index_ahead.py``, decision 0038): each title's
distinct words as ``(word, rank)`` pairs over a sorted vocabulary of its own.

Split with ``str.split`` over whole chunks of documents and numbered through a
dict by ``map``: about the CPU of the per-title loop it replaced (5.7-6.2 s at 1 M
titles on a loaded machine, most of it dict lookups of 6 M word strings), but it
yields the vocabulary the word index is checked against. A word counts once per
``(word, rank)``: ranks are unique (``ix_movies_search_rank``), so once per title.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from reelsearch.search.normalize import JOINED_TITLES, TITLE_SEPARATOR

# Titles split at a time: bounds the list of word strings alive at once (~25 MB).
_CHUNK_TITLES = 100_000
_RANK_BITS = 32
_RANK_MASK = (1 << _RANK_BITS) - 1


@dataclass(frozen=True, slots=True)
class TitleTokens:
    """Titles as words: ``pairs`` are ``(word number << 32) | rank``, sorted, each word of
    each title once, numbered by ``vocabulary`` (every word, the separator too, sorted)."""

    vocabulary: list[str]
    pairs: npt.NDArray[np.int64]
    ranks: npt.NDArray[np.int64]  # of the rows, in the order they were read
    documents: list[bytes]  # each row's title document, UTF-8, in the order read

    def word_numbers(self) -> npt.NDArray[np.int64]:
        return self.pairs >> _RANK_BITS

    def pair_ranks(self) -> npt.NDArray[np.int64]:
        return self.pairs & _RANK_MASK

    def document_counts(self) -> list[tuple[str, int]]:
        """``(word, titles holding it)`` for every word but the separator, sorted by word:
        the rows FTS5's vocabulary gives for the same documents (``SQLITE.vocabulary_sql``)."""
        counts = np.bincount(self.word_numbers(), minlength=len(self.vocabulary)).tolist()
        return [
            (word, count)
            for word, count in zip(self.vocabulary, counts, strict=True)
            if word != TITLE_SEPARATOR
        ]


def tokenize_titles(rows: Iterable[tuple[Any, ...]]) -> TitleTokens:
    """The words of ``rows`` (search_rank, norm_title, alt_norm_titles), split on white
    space as the title index's document (``JOINED_TITLES`` between the titles)."""
    rows = rows if isinstance(rows, list) else list(rows)
    texts = [norm + JOINED_TITLES + alt if alt else norm for _, norm, alt in rows]
    ranks = np.fromiter(map(itemgetter(0), rows), dtype=np.int64, count=len(rows))
    seen: dict[str, int] = {}  # word -> number in order of first sight
    numbered: list[npt.NDArray[np.int64]] = []
    for start in range(0, len(texts), _CHUNK_TITLES):
        chunk = texts[start : start + _CHUNK_TITLES]
        # One split of the joined chunk, and the count of each title's words, without
        # keeping a list per title alive (a million of them made the collector run).
        words = " ".join(chunk).split()
        per_title = np.fromiter(map(len, map(str.split, chunk)), dtype=np.int64, count=len(chunk))
        new = set(words).difference(seen)
        seen.update(zip(new, range(len(seen), len(seen) + len(new)), strict=True))
        word_ids = np.fromiter(map(seen.__getitem__, words), dtype=np.int64, count=len(words))
        title_ranks = np.repeat(ranks[start : start + len(chunk)], per_title)
        numbered.append((word_ids << _RANK_BITS) | title_ranks)
    vocabulary = sorted(seen)
    # First-sight numbers -> sorted numbers: the pairs then sort by word, then rank.
    renumber = np.empty(len(seen), dtype=np.int64)
    renumber[np.fromiter(map(seen.__getitem__, vocabulary), dtype=np.int64, count=len(seen))] = (
        np.arange(len(seen), dtype=np.int64)
    )
    first_sight = np.concatenate(numbered) if numbered else np.zeros(0, dtype=np.int64)
    pairs = np.sort((renumber[first_sight >> _RANK_BITS] << _RANK_BITS) | first_sight & _RANK_MASK)
    # A word twice in a title counts once (np.unique's hashing took seconds more).
    pairs = pairs[np.concatenate(([True], pairs[1:] != pairs[:-1]))] if len(pairs) else pairs
    return TitleTokens(vocabulary, pairs, ranks, list(map(str.encode, texts)))
