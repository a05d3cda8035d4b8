"""The words of the catalog's titles, sorted, with how many titles use each.

Used to tell a finished word from a prefix, and to expand a long prefix into
the words it can complete to. FTS5 answers ``"episode"*`` by merging the
postings of every matching word before the first row comes back (it has
prefix indexes only up to 4 letters); an explicit ``"episode" OR
"episodes"`` is read lazily in rowid order and stops at the LIMIT.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from functools import lru_cache

# Prefixes up to this length are served by the title index's prefix indexes.
INDEXED_PREFIX_LENGTH = 4
# A prefix completes to at most this many words, the most used first (Typesense
# expands to 4 by default; more keeps rare completions findable).
MAX_COMPLETIONS = 24
_CACHE_SIZE = 50_000
# Initialisms ("s w a t" in a title, "swat" typed) up to this many letters.
MAX_INITIALS = 5


class Vocabulary:
    """Sorted title words and their document counts, as FTS5's vocabulary table lists them,
    and the initialisms titles spell letter by letter ("swat" for S.W.A.T.)."""

    def __init__(self, words: Sequence[tuple[str, int]], initialisms: Iterable[str] = ()) -> None:
        ordered = sorted(words)
        self.words = [word for word, _ in ordered]
        self.doc_counts = [docs for _, docs in ordered]
        self._members = frozenset(self.words)
        self.initialisms = frozenset(initialisms)
        self.completions = lru_cache(maxsize=_CACHE_SIZE)(self._completions)

    def __contains__(self, word: object) -> bool:
        return word in self._members

    def __len__(self) -> int:
        return len(self.words)

    def doc_count(self, word: str) -> int:
        """How many titles hold ``word`` (0 if none)."""
        low = bisect_left(self.words, word)
        return self.doc_counts[low] if low < len(self.words) and self.words[low] == word else 0

    def titles_with(self, word: str, *, prefix: bool, up_to: int) -> int:
        """How many titles hold ``word`` (or, as a prefix, a word it begins), counted
        only as far as ``up_to``: a cheap "is this word rare?". A title holding
        two completions counts twice."""
        if not prefix:
            return self.doc_count(word)
        total = 0
        for index in range(bisect_left(self.words, word), len(self.words)):
            if total >= up_to or not self.words[index].startswith(word):
                break
            total += self.doc_counts[index]
        return total

    def has_prefix(self, prefix: str) -> bool:
        """Whether some word starts with ``prefix``."""
        low = bisect_left(self.words, prefix)
        return low < len(self.words) and self.words[low].startswith(prefix)

    def _completions(self, prefix: str) -> tuple[str, ...] | None:
        """Words starting with ``prefix``, most used first; None if the index does it better."""
        if len(prefix) <= INDEXED_PREFIX_LENGTH:
            return None
        low = bisect_left(self.words, prefix)
        high = bisect_left(self.words, prefix[:-1] + chr(ord(prefix[-1]) + 1), low)
        if high - low <= MAX_COMPLETIONS:
            return tuple(self.words[low:high])
        # The typed word itself always stays in (it sorts first in its range).
        own = self.words[low] == prefix
        start = low + 1 if own else low
        best = heapq.nlargest(
            MAX_COMPLETIONS - own, range(start, high), key=self.doc_counts.__getitem__
        )
        return (prefix,) * own + tuple(self.words[i] for i in best)
