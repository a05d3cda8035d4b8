"""The title index's postings, mapped: for each word, the ranks of the titles
holding it, and each title's normalized text by rank.

FTS5 evaluates a search's match expressions again on every search (the probe
of a known-item query, the typo read: about half of the engine's CPU on the
sample, decision 0021). With each word's titles as a sorted array of ranks
(rank = FTS5's rowid, so array order is the index's popularity order), the
same sets are a few numpy intersections and unions (``rank_sets.py``), and a
small set is ranked from the titles here without reading its rows.

The arrays are the import's (``postings_store.py``), mapped read-only and
shared by every worker of a host (decision 0033; built in each worker's heap
they cost a 2-worker server ~60 MiB, 0031). Writes since the import
(documents API) are a small delta in memory (``postings_delta.py``): the
base ranks whose titles changed or went, and the titles now at the changed
ranks; every word read merges it. A catalog with no sound stored postings
searches through its title index alone (FTS5, or PostgreSQL's tsvector;
``stored_postings.py`` says why in the log). PostgreSQL catalogs have them too (0037).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from reelsearch.search.normalize import JOINED_TITLES, TITLE_SEPARATOR
from reelsearch.search.postings_store import PostingArrays
from reelsearch.search.word_arrays import WordLookup

# The largest catalog whose postings are used (the setting's default; 0 turns them
# off): the largest measured (decision 0033). Above it FTS5 answers alone.
POSTINGS_MAX_MOVIES = 1_000_000
# A short prefix ("mat*": every word it begins) whose words have more postings
# than this is left to FTS5's prefix index: merging them here costs more.
MAX_PREFIX_POSTINGS = 20_000
# On PostgreSQL, left to the one statement: a broad prefix there costs tens of ms at
# 1 M titles (its probe walks the popularity index), where merging 150,000 postings
# here costs about 7 ms once (then the prefix cache holds it). Decision 0046.
POSTGRES_MAX_PREFIX_POSTINGS = 150_000
# Words whose rank arrays are remembered (a view each: ~100 bytes with its key).
WORD_CACHE_SIZE = 8_192
# Bytes of merged prefix sets remembered per catalog version (each worker's own
# heap, least recently used dropped first). A short prefix is typed by many
# searches ("th", "the", "ma"...) and merging its words' postings is a sort of
# up to MAX_PREFIX_POSTINGS ranks (0.1-0.8 ms on the sample); the merged set of
# the popular ones is a few KB each. With a higher cap (PostgreSQL's) the bytes grow
# with it (7 MiB): else one broad prefix would evict all the others.
PREFIX_CACHE_BYTES = 1 << 20
# No UTF-8 text holds this byte: prefix + it sorts after every word the prefix begins.
_PAST_PREFIX = b"\xff"
_SEPARATOR = frozenset([TITLE_SEPARATOR])  # a token of documents, never a word
_SEPARATOR_UTF8 = JOINED_TITLES.encode()  # b" \xee\x80\x80 "
# A broad set is walked this many ranks at a time for a tier's best titles (``walk``):
# enough for a tier's few dozen titles in one or two chunks, few enough that a walk that
# stops early skips most of the intersection.
WALK_CHUNK = 256
# Primary title lengths are kept as 16 bits: longer titles are this long for exact tests.
_LENGTH_CAP = 0xFFFF

Ranks = npt.NDArray[np.int32]
EMPTY: Ranks = np.zeros(0, dtype=np.int32)


@dataclass(frozen=True, slots=True)
class PostingsDelta:
    """The writes since the import, over the stored postings: ``stale`` base ranks
    (sorted) whose stored title is no longer the catalog's, and ``documents``, the
    title document now at each changed rank (new ranks included)."""

    stale: Ranks = field(default_factory=lambda: EMPTY)
    documents: Mapping[int, str] = field(default_factory=dict)

    def words(self) -> dict[str, Ranks]:
        """Each word of the changed titles -> the changed ranks holding it, ascending."""
        found: dict[str, list[int]] = {}
        for rank in sorted(self.documents):
            for word in set(self.documents[rank].split()) - _SEPARATOR:
                found.setdefault(word, []).append(rank)
        return {word: np.array(ranks, dtype=np.int32) for word, ranks in found.items()}


NO_DELTA = PostingsDelta()


class TitlePostings:
    """Sorted rank arrays per word (numbered as the catalog's word index numbers
    them) and each rank's title document, from the stored postings and the delta
    of the writes since."""

    __slots__ = (
        "_blob", "_changed", "_doc_offsets", "_documents", "_extra", "_lookup", "_offsets",
        "_prefix_bytes", "_prefixes", "_primary_lengths", "_ranks", "_stale", "arrays", "delta",
        "_prefix_cache_scale", "max_prefix_postings", "size", "word",
    )  # fmt: skip

    def __init__(
        self,
        arrays: PostingArrays,
        lookup: WordLookup,
        delta: PostingsDelta = NO_DELTA,
        primary_lengths: npt.NDArray[np.uint16] | None = None,
        max_prefix_postings: int = MAX_PREFIX_POSTINGS,
    ) -> None:
        self.arrays = arrays
        self.delta = delta
        # Past this many postings a prefix is left to the text index (``prefix``).
        self.max_prefix_postings = max_prefix_postings
        self._prefix_cache_scale = max(1, max_prefix_postings // MAX_PREFIX_POSTINGS)
        self._lookup = lookup
        sections = arrays.sections
        # Memoryviews: an index gives a Python int (no numpy scalar), without a
        # list of boxed ints.
        self._offsets = sections["posting_offsets"].data
        self._ranks = sections["postings"]
        self._doc_offsets = sections["title_offsets"].data
        self._blob = arrays.blob
        self._stale = delta.stale
        self._documents = dict(delta.documents)
        self._changed: Ranks = np.array(sorted(self._documents), dtype=np.int32)
        self._extra = delta.words()
        # Each stored rank's primary title length in bytes: found once per mapped file
        # (with_delta passes it on), in a few vectorized passes over the documents.
        self._primary_lengths = (
            primary_title_lengths(arrays) if primary_lengths is None else primary_lengths
        )
        self.size = arrays.nbytes()  # mapped: shared by the host's workers
        # Query words and their typo candidates repeat: a hit costs a dict lookup,
        # a miss the word's hash and bucket in the mapped word index.
        self.word = lru_cache(maxsize=WORD_CACHE_SIZE)(self._word)
        # Merged prefix sets (``prefix``), bounded in bytes (``_remember_prefix``); this object
        # is one catalog version's (writes make a new one: ``with_delta``).
        self._prefixes: OrderedDict[str, Ranks] = OrderedDict()
        self._prefix_bytes = 0

    def _word(self, word: str) -> Ranks:
        """The ranks of the titles holding ``word``, ascending."""
        number = self._lookup.find(word.encode())
        stored = EMPTY
        if number >= 0:
            offsets = self._offsets
            stored = self._drop_stale(self._ranks[offsets[number] : offsets[number + 1]])
        if self._extra:
            changed = self._extra.get(word)
            if changed is not None:
                return changed if not len(stored) else np.sort(np.concatenate([stored, changed]))
        return stored

    def prefix(self, prefix: str) -> Ranks | None:
        """The ranks of the titles holding a word that ``prefix`` begins (FTS5's
        ``"prefix"*``), ascending; None when that is too many postings to merge."""
        prefixes = self._prefixes
        merged = prefixes.get(prefix)
        if merged is not None:
            prefixes.move_to_end(prefix)
            return merged
        key = prefix.encode()
        low = self._lookup.bisect(key)
        high = self._lookup.bisect(key + _PAST_PREFIX, low)
        start, end = self._offsets[low], self._offsets[high]
        if end - start > self.max_prefix_postings:
            return None
        parts = [self._drop_stale(self._ranks[start:end])]
        parts += [ranks for word, ranks in self._extra.items() if word.startswith(prefix)]
        if len(parts) == 1 and high - low <= 1:
            return parts[0]  # one word's own postings: a view, nothing to remember
        merged = sorted_unique(np.concatenate(parts))
        self._remember_prefix(prefix, merged)
        return merged

    def _remember_prefix(self, prefix: str, merged: Ranks) -> None:
        """Keep ``merged`` for the next search of ``prefix``, dropping the least
        recently used sets past the cache's bytes (PREFIX_CACHE_BYTES or more)."""
        size, bound = merged.nbytes, PREFIX_CACHE_BYTES * self._prefix_cache_scale
        if size > bound:
            return
        merged.flags.writeable = False  # shared by the searches that read it
        prefixes = self._prefixes
        self._prefix_bytes += size
        while self._prefix_bytes > bound:
            _, dropped = prefixes.popitem(last=False)
            self._prefix_bytes -= dropped.nbytes
        prefixes[prefix] = merged

    def document(self, rank: int) -> str:
        """A title's document as the title index holds it: the normalized titles,
        primary first, joined by ``JOINED_TITLES``."""
        if self._documents:
            changed = self._documents.get(rank)
            if changed is not None:
                return changed
        offsets = self._doc_offsets
        base = self.arrays.blob_offset
        return self._blob[base + offsets[rank] : base + offsets[rank + 1]].decode()  # type: ignore[no-any-return]

    def stored_document(self, rank: int) -> str:
        """The import's document of ``rank`` ("" for a rank it had no title at)."""
        offsets = self._doc_offsets
        if not 0 <= rank < len(offsets) - 1:
            return ""
        base = self.arrays.blob_offset
        return self._blob[base + offsets[rank] : base + offsets[rank + 1]].decode()  # type: ignore[no-any-return]

    def titles(self, rank: int) -> list[str]:
        """A title's normalized titles, primary first (``assessment.titles_of``)."""
        return self.document(rank).split(JOINED_TITLES)

    def primary_length_is(self, ranks: Ranks, length: int) -> Ranks:
        """Those of ``ranks`` (sorted) whose primary title is ``length`` bytes of UTF-8,
        as the catalog holds it now (a rank written since the import: its new title)."""
        lengths = self._primary_lengths
        stored = ranks[ranks < len(lengths)]
        kept: Ranks = stored[lengths[stored] == min(length, _LENGTH_CAP)]
        if not len(self._changed):
            return kept
        # Changed ranks: their stored length is the import's; the delta's document says.
        changed = ranks[np.isin(ranks, self._changed)]
        kept = without(kept, changed)
        now = [
            rank
            for rank in changed.tolist()
            if len(self._documents[rank].split(JOINED_TITLES, 1)[0].encode()) == length
        ]
        return kept if not now else sorted_unique(np.concatenate([kept, np.array(now, np.int32)]))

    def with_delta(self, delta: PostingsDelta) -> TitlePostings:
        """These stored postings with ``delta`` instead of this one's (the mapping shared)."""
        return TitlePostings(
            self.arrays, self._lookup, delta, self._primary_lengths, self.max_prefix_postings
        )

    def _drop_stale(self, ranks: Ranks) -> Ranks:
        return without(ranks, self._stale)


def primary_title_lengths(arrays: PostingArrays) -> npt.NDArray[np.uint16]:
    """Each rank's primary title length in bytes: its document up to the first
    ``JOINED_TITLES`` (U+E000 between spaces; no title holds U+E000), all of it if none;
    capped at _LENGTH_CAP (no query's words are that long)."""
    offsets = arrays.sections["title_offsets"]
    starts, ends = offsets[:-1], offsets[1:]
    text = arrays.sections["title_bytes"]
    lead = np.flatnonzero(text[:-2] == _SEPARATOR_UTF8[1])  # U+E000 is ee 80 80
    lead = lead[(text[lead + 1] == _SEPARATOR_UTF8[2]) & (text[lead + 2] == _SEPARATOR_UTF8[3])]
    separators = np.append(lead - 1, np.iinfo(np.int64).max)  # from the space before
    first = separators[np.searchsorted(separators, starts)]
    lengths: npt.NDArray[np.uint16] = np.minimum(np.minimum(first, ends) - starts, _LENGTH_CAP)
    return lengths.astype(np.uint16)


def intersect(sets: Sequence[Ranks]) -> Ranks:
    """The ranks in every one of ``sets`` (each sorted, no repeats), ascending."""
    ordered = sorted(sets, key=len)
    result = ordered[0]
    for other in ordered[1:]:
        if not len(result):
            break
        if not len(other):
            return EMPTY
        at = np.searchsorted(other, result)
        at[at == len(other)] = 0
        result = result[other[at] == result]
    return result


def union(sets: Sequence[Ranks]) -> Ranks:
    """The ranks in any one of ``sets``, ascending, no repeats."""
    present = [ranks for ranks in sets if len(ranks)]
    if not present:
        return EMPTY
    if len(present) == 1:
        return present[0]
    return sorted_unique(np.concatenate(present))


def walk(base: Ranks, others: Sequence[Ranks]) -> Iterator[Ranks]:
    """The ranks of ``base`` in each of ``others``, best first, a chunk at a time: the
    whole intersection once when one of ``others`` is smaller than ``base`` (its cost
    follows the smallest array), else ``base`` walked and each chunk intersected, so
    that a broad set's first few titles do not cost its whole intersection."""
    if others and min(map(len, others)) < len(base):
        whole = intersect([base, *others])
        for start in range(0, len(whole), WALK_CHUNK):
            yield whole[start : start + WALK_CHUNK]
        return
    for start in range(0, len(base), WALK_CHUNK):
        yield intersect([base[start : start + WALK_CHUNK], *others])


def best_of(
    base: Ranks, others: Sequence[Ranks], limit: int, kept: Callable[[Ranks], Ranks] | None = None
) -> list[int]:
    """The best ``limit`` ranks of ``base`` in each of ``others`` (and left by ``kept``),
    ascending: ``walk`` until there are as many."""
    found: list[int] = []
    for chunk in walk(base, others):
        found += (chunk if kept is None else kept(chunk)).tolist()
        if len(found) >= limit:
            return found[:limit]
    return found


def without(ranks: Ranks, excluded: Ranks) -> Ranks:
    """``ranks`` less those in ``excluded`` (both sorted)."""
    if not len(ranks) or not len(excluded):
        return ranks
    at = np.searchsorted(excluded, ranks)
    at[at == len(excluded)] = 0
    kept: Ranks = ranks[excluded[at] != ranks]
    return kept


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
