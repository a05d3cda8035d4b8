"""The title index's postings in memory: for each word, the ranks of the titles
holding it, and each title's normalized text by rank.

FTS5 evaluates a search's match expressions again on every search (the probe
of a known-item query, the typo read: about half of the engine's CPU on the
sample, decision 0021). With each word's titles as a sorted array of ranks
(rank = FTS5's rowid, so array order is the index's popularity order), the
same sets are a few numpy intersections and unions (``rank_sets.py``), and a
small set is ranked from the titles here without reading its rows.

Built at load, once per catalog version, from the catalog's own titles (the
documents ``catalog/writer.py`` indexes), and only when the setting
``title_postings_max_movies`` (off by default) admits the catalog's size: the
arrays and titles are private to each worker (2.4 MB of arrays and text at
58,788 titles, but the build leaves each worker's heap ~30 MiB larger: a
2-worker server's PSS 142 -> 204-215 MiB, bench/RESULTS.md; storing them
with the catalog, mapped and shared, is the way on). A larger catalog, or one whose words
do not split as FTS5 split them, has none and searches through FTS5 alone.
Catalog writes are covered because the snapshot, and these with it, is
loaded again for the new version (built from the titles of that version).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from functools import lru_cache
from itertools import chain
from typing import Any

import numpy as np
import numpy.typing as npt

from reelsearch.search.normalize import JOINED_TITLES, TITLE_SEPARATOR
from reelsearch.search.vocabulary import Vocabulary
from reelsearch.search.word_arrays import WordLookup

log = logging.getLogger(__name__)

# The largest catalog worth postings (the value that turns them on). At 58,788
# titles they cost 0.25 s of CPU at load; a 1 M catalog would cost ~100 MB per worker
# and seconds of each worker's start, past the memory and start-time budgets.
POSTINGS_MAX_MOVIES = 250_000
# A short prefix ("mat*": every word it begins) whose words have more postings
# than this is left to FTS5's prefix index: merging them here costs more.
MAX_PREFIX_POSTINGS = 20_000
# Words whose rank arrays are remembered (a view each: ~100 bytes with its key).
WORD_CACHE_SIZE = 8_192
# The titles of every movie, by rank, in the title index's form.
TITLES_SQL = "SELECT search_rank, norm_title, alt_norm_titles FROM movies"
# No UTF-8 text holds this byte: prefix + it sorts after every word the prefix begins.
_PAST_PREFIX = b"\xff"

Ranks = npt.NDArray[np.int32]
EMPTY: Ranks = np.zeros(0, dtype=np.int32)


class TitlePostings:
    """Sorted rank arrays per word (numbered as the catalog's word index numbers
    them; words written since the import that it lacks, by name) and each rank's
    title document."""

    __slots__ = (
        "_blob", "_doc_offsets", "_extra", "_lookup", "_offsets", "_ranks", "size", "word",
    )  # fmt: skip

    def __init__(
        self,
        lookup: WordLookup,
        offsets: npt.NDArray[np.int64],
        ranks: Ranks,
        extra: Mapping[str, Ranks],
        blob: bytes,
        doc_offsets: npt.NDArray[np.int64],
    ) -> None:
        self._lookup = lookup
        # Memoryviews: an index gives a Python int (no numpy scalar), without a
        # list of boxed ints (about 4 MB more per worker at 58,788 titles).
        self._offsets = offsets.data
        self._ranks = ranks
        self._extra = dict(extra)
        self._blob = blob
        self._doc_offsets = doc_offsets.data
        self.size = int(ranks.nbytes + offsets.nbytes + doc_offsets.nbytes + len(blob))
        # Query words and their typo candidates repeat: a hit costs a dict lookup,
        # a miss the word's hash and bucket in the mapped word index.
        self.word = lru_cache(maxsize=WORD_CACHE_SIZE)(self._word)

    def _word(self, word: str) -> Ranks:
        """The ranks of the titles holding ``word``, ascending."""
        if self._extra:
            found = self._extra.get(word)
            if found is not None:
                return found
        number = self._lookup.find(word.encode())
        if number < 0:
            return EMPTY
        offsets = self._offsets
        return self._ranks[offsets[number] : offsets[number + 1]]

    def prefix(self, prefix: str) -> Ranks | None:
        """The ranks of the titles holding a word that ``prefix`` begins (FTS5's
        ``"prefix"*``), ascending; None when that is too many postings to merge."""
        key = prefix.encode()
        low = self._lookup.bisect(key)
        high = self._lookup.bisect(key + _PAST_PREFIX, low)
        start, end = self._offsets[low], self._offsets[high]
        if end - start > MAX_PREFIX_POSTINGS:
            return None
        parts = [self._ranks[start:end]]
        parts += [ranks for word, ranks in self._extra.items() if word.startswith(prefix)]
        if len(parts) == 1 and high - low <= 1:
            return parts[0]
        return sorted_unique(np.concatenate(parts))

    def document(self, rank: int) -> str:
        """A title's document as the title index holds it: the normalized titles,
        primary first, joined by ``JOINED_TITLES``."""
        offsets = self._doc_offsets
        return self._blob[offsets[rank] : offsets[rank + 1]].decode()

    def titles(self, rank: int) -> list[str]:
        """A title's normalized titles, primary first (``assessment.titles_of``)."""
        return self.document(rank).split(JOINED_TITLES)

    @classmethod
    def build(
        cls, rows: Iterable[tuple[Any, ...]], vocabulary: Vocabulary, overlay: Mapping[str, int]
    ) -> TitlePostings | None:
        """Postings of ``rows`` (search_rank, norm_title, alt_norm_titles), or None when
        a word's count differs from the title index's (``vocabulary`` with the
        ``overlay`` of writes): then FTS5 splits titles otherwise, and only it is right."""
        lookup = WordLookup(vocabulary.arrays)
        # Titles in rank order, so each word's list of ranks comes out sorted.
        titles_of: defaultdict[str, list[int]] = defaultdict(list)
        documents: list[bytes] = []
        ranks: list[int] = []
        rows = list(rows)
        # Usually in rank order already (the table's, an import inserts by rank);
        # reading through the rank index instead cost 3x the plain scan.
        if any(rows[i][0] > rows[i + 1][0] for i in range(len(rows) - 1)):
            rows.sort()
        for rank, norm_title, alt_norm_titles in rows:
            document = (
                norm_title + JOINED_TITLES + alt_norm_titles if alt_norm_titles else norm_title
            )
            documents.append(document.encode())
            ranks.append(rank)
            for word in set(document.split()):
                titles_of[word].append(rank)
        titles_of.pop(TITLE_SEPARATOR, None)
        numbers = {word.decode(): n for n, word in enumerate(lookup.words_between(0, lookup.count))}
        known = sorted((numbers[word], word) for word in titles_of if word in numbers)
        extra = {word: titles for word, titles in titles_of.items() if word not in numbers}
        del numbers
        counts = np.zeros(lookup.count, dtype=np.int64)
        counts[[number for number, _ in known]] = [len(titles_of[word]) for _, word in known]
        expected = vocabulary.arrays.sections["doc_counts"].astype(np.int64)
        for word, docs in overlay.items():
            number = lookup.find(word.encode())
            if number >= 0:
                expected[number] += docs
            elif len(extra.get(word, ())) != docs:
                _refuse(f"word {word!r} written since the import")
                return None
        unknown = [word for word in extra if word not in overlay]
        if unknown or not np.array_equal(counts, expected):
            _refuse(f"{len(unknown)} words unknown to the title index, or other counts")
            return None
        offsets = np.zeros(lookup.count + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        postings = np.fromiter(
            chain.from_iterable(titles_of[word] for _, word in known),
            dtype=np.int32,
            count=int(offsets[-1]),
        )
        top = max(ranks, default=0)
        lengths = np.zeros(top + 2, dtype=np.int64)
        lengths[np.array(ranks, dtype=np.int64) + 1] = [len(d) for d in documents]
        blob = b"".join(documents)
        return cls(
            lookup,
            offsets,
            postings,
            {word: np.array(titles, dtype=np.int32) for word, titles in extra.items()},
            blob,
            np.cumsum(lengths),
        )


def sorted_unique(ranks: Ranks) -> Ranks:
    """``ranks`` sorted, repeats dropped: ``np.unique`` without its hashing (numpy 2
    hashes unsorted input, several times slower than a sort for these sizes)."""
    ranks.sort()
    if len(ranks) < 2:
        return ranks
    keep = np.empty(len(ranks), dtype=bool)
    keep[0] = True
    np.not_equal(ranks[1:], ranks[:-1], out=keep[1:])
    unique: Ranks = ranks[keep]
    return unique


def _refuse(reason: str) -> None:
    log.warning("title postings not built, searches read FTS5 only: %s", reason)
