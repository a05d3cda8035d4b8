"""The words of the catalog's titles, sorted, with how many titles use each.

Used to tell a finished word from a prefix, and to expand a long prefix into
the words it can complete to. FTS5 answers ``"episode"*`` by merging the
postings of every matching word before the first row comes back (it has
prefix indexes only up to 4 letters); an explicit ``"episode" OR
"episodes"`` is read lazily in rowid order and stops at the LIMIT.

The words are the catalog's ``WordArrays`` (``search/word_arrays.py``),
usually a file mapped read-only and shared by every worker; words written
after the import sit in a small in-memory overlay merged into each lookup.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

import numpy as np

from reelsearch.search.word_arrays import WordArrays, WordLookup
from reelsearch.search.word_store import build_word_arrays

# Prefixes up to this length are served by the title index's prefix indexes.
INDEXED_PREFIX_LENGTH = 4
# A prefix completes to at most this many words, the most used first (Typesense
# expands to 4 by default; more keeps rare completions findable).
MAX_COMPLETIONS = 24
_CACHE_SIZE = 50_000
# Initialisms ("s w a t" in a title, "swat" typed) up to this many letters.
MAX_INITIALS = 5
# No UTF-8 text holds this byte: prefix + it sorts after every word the prefix begins.
_PAST_PREFIX = b"\xff"


class Vocabulary:
    """Sorted title words and their document counts, as FTS5's vocabulary table lists them,
    and the initialisms titles spell letter by letter ("swat" for S.W.A.T.).

    Built from ``words`` (``(word, document_count)`` pairs) or over ``arrays``;
    ``added`` (word -> titles added since the import) is merged into every answer.
    """

    def __init__(
        self,
        words: Sequence[tuple[str, int]] = (),
        initialisms: Iterable[str] = (),
        *,
        arrays: WordArrays | None = None,
        added: Mapping[str, int] | None = None,
    ) -> None:
        if arrays is None:
            arrays = build_word_arrays(words, initialisms)
        self.arrays = arrays
        self._words = WordLookup(arrays)
        self._counts = arrays.counts()
        # Negative additions are titles removed by writes: a word no title holds
        # any more is gone from every answer, as if the index were rebuilt.
        self._added = dict(added or {})
        present: list[str] = []
        gone: set[str] = set()
        self._new_words = 0
        for word, docs in self._added.items():
            index = self._words.find(word.encode())
            base = self._counts[index] if index >= 0 else 0
            if base + docs > 0:
                present.append(word)
                self._new_words += index < 0
            elif index >= 0:
                gone.add(word)
        self._added_sorted = sorted(present)
        self._present = frozenset(present)
        self._gone = frozenset(gone)
        self.initialisms = arrays.initialisms() | frozenset(initialisms)
        self.completions = lru_cache(maxsize=_CACHE_SIZE)(self._completions)

    def with_added(self, words: Mapping[str, int], initialisms: Iterable[str] = ()) -> Vocabulary:
        """This vocabulary plus ``words`` (word -> titles added): a new one, the base shared."""
        merged = dict(self._added)
        for word, docs in words.items():
            merged[word] = merged.get(word, 0) + docs
        extra = (self.initialisms - self.arrays.initialisms()) | frozenset(initialisms)
        return Vocabulary(initialisms=extra, arrays=self.arrays, added=merged)

    @property
    def lookup(self) -> WordLookup:
        """The stored words' numbers (shared with the title postings, numbered alike)."""
        return self._words

    def __contains__(self, word: object) -> bool:
        if not isinstance(word, str):
            return False
        if word in self._added:
            return word in self._present
        return self._words.find(word.encode()) >= 0

    def __len__(self) -> int:
        return len(self._words) + self._new_words - len(self._gone)

    def doc_count(self, word: str) -> int:
        """How many titles hold ``word`` (0 if none)."""
        index = self._words.find(word.encode())
        base: int = self._counts[index] if index >= 0 else 0
        return max(0, base + self._added.get(word, 0))

    def titles_with(self, word: str, *, prefix: bool, up_to: int) -> int:
        """How many titles hold ``word`` (or, as a prefix, a word it begins), counted
        only as far as ``up_to``: a cheap "is this word rare?". A title holding
        two completions counts twice."""
        if not prefix:
            return self.doc_count(word)
        key = word.encode()
        start = self._words.bisect(key)
        if self._added:
            return self._titles_with_added(word, start, up_to)
        total = 0
        for index in range(start, len(self._words)):
            if total >= up_to or not self._words[index].startswith(key):
                break
            total += self._counts[index]
        return total

    def most_titles_with_prefix(self, prefix: str) -> int:
        """The most titles one word beginning with ``prefix`` is in (0 if none): a floor
        of the titles the prefix matches, where ``titles_with`` is a ceiling. The base's
        most used word in the range (one pass over its counts, no sort) and every word
        added since the import, each with its merged count."""
        key = prefix.encode()
        low = self._words.bisect(key)
        high = self._words.bisect(key + _PAST_PREFIX, low)
        best = 0
        if high > low:
            top = low + int(np.argmax(self._counts[low:high]))
            best = self.doc_count(self._words.words_at((top,))[0])
        for word in self._added_sorted[bisect_left(self._added_sorted, prefix) :]:
            if not word.startswith(prefix):
                break
            best = max(best, self.doc_count(word))
        return best

    def _titles_with_added(self, prefix: str, start: int, up_to: int) -> int:
        """``titles_with`` over base and overlay merged in word order, as one index would."""
        words = self._words
        base = (words[i].decode() for i in range(start, len(words)))
        added = self._added_sorted[bisect_left(self._added_sorted, prefix) :]
        total = 0
        previous = None
        for word in heapq.merge(base, added):
            if total >= up_to or not word.startswith(prefix):
                break
            if word != previous:  # a word in both comes twice: count it once, merged
                total += self.doc_count(word)
                previous = word
        return total

    def has_prefix(self, prefix: str) -> bool:
        """Whether some word starts with ``prefix``."""
        key = prefix.encode()
        low = self._words.bisect(key)
        while low < len(self._words) and self._words[low].startswith(key):
            if self._words[low].decode() not in self._gone:  # at most len(_gone) steps
                return True
            low += 1
        low = bisect_left(self._added_sorted, prefix)
        return low < len(self._added_sorted) and self._added_sorted[low].startswith(prefix)

    def _completions(self, prefix: str) -> tuple[str, ...] | None:
        """Words starting with ``prefix``, most used first; None if the index does it better."""
        if len(prefix) <= INDEXED_PREFIX_LENGTH:
            return None
        key = prefix.encode()
        low = self._words.bisect(key)
        high = self._words.bisect(key + _PAST_PREFIX, low)
        if not self._added:
            return self._base_completions(prefix, low, high)
        # Merged: the base's best (by its own counts) plus every added word in range,
        # ranked by merged counts; ties in word order, as a fresh build would.
        start = bisect_left(self._added_sorted, prefix)
        added = [w for w in self._added_sorted[start:] if w.startswith(prefix)]
        new = sum(1 for w in added if self._words.find(w.encode()) < 0)
        if high - low + new <= MAX_COMPLETIONS:
            base = [word.decode() for word in self._words.words_between(low, high)]
            return tuple(sorted({*base, *added} - self._gone))
        top = self._top(low, high, MAX_COMPLETIONS + 1 + len(self._gone))
        candidates = set(self._words.words_at(top)) - self._gone
        candidates.update(added)
        own = prefix in self
        candidates.discard(prefix)
        best = sorted(candidates, key=lambda w: (-self.doc_count(w), w))
        return (prefix,) * own + tuple(best[: MAX_COMPLETIONS - own])

    def _base_completions(self, prefix: str, low: int, high: int) -> tuple[str, ...]:
        if high - low <= MAX_COMPLETIONS:
            return tuple(word.decode() for word in self._words.words_between(low, high))
        # The typed word itself always stays in (it sorts first in its range).
        own = self._words[low] == prefix.encode()
        start = low + 1 if own else low
        best = self._top(start, high, MAX_COMPLETIONS - own)
        return (prefix,) * own + tuple(self._words.words_at(best))

    def _top(self, low: int, high: int, count: int) -> list[int]:
        """Numbers of the ``count`` most used words in ``low:high``; ties in word order."""
        counts = self.arrays.sections["doc_counts"][low:high].astype(np.int64)
        return [low + int(i) for i in np.argsort(-counts, kind="stable")[:count]]
