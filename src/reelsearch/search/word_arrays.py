"""The catalog's words as a few flat arrays: what the vocabulary and typo index read.

The same arrays come from an in-memory build or from a file mapped read-only
(``search/word_store.py``), so every worker process of a host shares one copy
of the pages instead of holding a million ``str`` objects of its own:

- ``word_bytes`` + ``word_offsets``: the words, sorted, UTF-8 encoded one
  after another (UTF-8 byte order is code point order, so bisecting bytes
  finds what bisecting ``str`` would);
- ``doc_counts``: how many titles hold each word;
- ``bucket_starts`` + ``bucket_words``: a hash table (word hash -> word
  number, buckets laid out one after another) for O(1) membership;
- ``typo_keys`` + ``typo_owners``: sorted delete hashes and the word each
  came from (``search/typos.py``);
- ``initialisms``: the few letter runs titles spell ("swat").

Hashes are xxh3-64 of the UTF-8 bytes: Python's ``hash(str)`` changes with
every process, and a stored index must mean the same in all of them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from xxhash import xxh3_64_intdigest

# Section name -> element type, in file order. Fixed widths, little-endian.
SECTION_TYPES: Mapping[str, str] = {
    "word_bytes": "u1",
    "word_offsets": "<i8",
    "doc_counts": "<i4",
    "bucket_starts": "<i4",
    "bucket_words": "<i4",
    "typo_keys": "<u8",
    "typo_owners": "<i4",
    "initialisms": "u1",
}


# One word in this many is kept in memory as bytes to bisect over (~2 MB at 1 M titles).
SAMPLE_EVERY = 16


def word_hash(word: bytes) -> int:
    """The stable 64-bit hash of a word's UTF-8 bytes (same in every process and version)."""
    return xxh3_64_intdigest(word)


@dataclass(frozen=True, slots=True)
class WordArrays:
    """Sorted words with their counts, membership table and typo keys (see module doc)."""

    sections: Mapping[str, npt.NDArray[Any]]
    # Where the word bytes are read from: the mapped file or an in-memory bytes.
    blob: Any
    blob_offset: int
    typo_word_count: int  # words the typo index holds (long enough, no digits)

    @property
    def word_count(self) -> int:
        return len(self.sections["doc_counts"])

    def offsets(self) -> memoryview:
        """Word start offsets (one more than words), as Python ints on indexing."""
        return self.sections["word_offsets"].data

    def counts(self) -> memoryview:
        return self.sections["doc_counts"].data

    def initialisms(self) -> frozenset[str]:
        text = bytes(self.sections["initialisms"]).decode()
        return frozenset(text.split("\n")) if text else frozenset()

    def nbytes(self) -> int:
        return sum(int(array.nbytes) for array in self.sections.values())


def hash_table(word_hashes: npt.NDArray[np.uint64]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Buckets of word numbers by hash: ``(starts, words)``, about one word per bucket."""
    count = len(word_hashes)
    size = 1 << max(count - 1, 1).bit_length()  # a power of two >= count
    slots = (word_hashes & np.uint64(size - 1)).astype(np.int64)
    order = np.argsort(slots, kind="stable")
    starts = np.searchsorted(slots[order], np.arange(size + 1), side="left")
    return starts.astype("<i4"), order.astype("<i4")


def in_memory(
    words: list[bytes], counts: list[int], keys: npt.NDArray[np.uint64], owners: npt.NDArray[Any],
    typo_word_count: int, initialisms: list[str],
) -> WordArrays:  # fmt: skip
    """WordArrays over freshly built arrays (``words`` sorted, distinct)."""
    blob = b"".join(words)
    offsets = np.zeros(len(words) + 1, dtype="<i8")
    if words:
        np.cumsum([len(word) for word in words], out=offsets[1:])
    hashes = np.fromiter((word_hash(w) for w in words), dtype=np.uint64, count=len(words))
    starts, bucket_words = hash_table(hashes)
    sections = {
        "word_bytes": np.frombuffer(blob, dtype="u1"),
        "word_offsets": offsets,
        "doc_counts": np.asarray(counts, dtype="<i4"),
        "bucket_starts": starts,
        "bucket_words": bucket_words,
        "typo_keys": keys.astype("<u8", copy=False),
        "typo_owners": owners.astype("<i4", copy=False),
        "initialisms": np.frombuffer("\n".join(sorted(initialisms)).encode(), dtype="u1"),
    }
    return WordArrays(sections, blob, 0, typo_word_count)


class WordLookup:
    """Word numbers by bytes over one ``WordArrays``: the hot, scalar side of it.

    Scalar reads go through memoryviews (a Python int per index, no numpy
    scalar); a word's bytes are sliced from the blob, which for a mapped file
    touches only that word's page.
    """

    __slots__ = (
        "_blob", "_base", "_offsets", "_starts", "_bucket_words", "_mask", "_sample", "count",
    )  # fmt: skip

    def __init__(self, arrays: WordArrays, *, bisects: bool = True) -> None:
        """``bisects=False``: only ``find`` and numbered reads will be used (no sample kept)."""
        self._blob = arrays.blob
        self._base = arrays.blob_offset
        self._offsets = arrays.offsets()
        self._starts = arrays.sections["bucket_starts"].data
        self._bucket_words = arrays.sections["bucket_words"].data
        self._mask = len(self._starts) - 2
        self.count = arrays.word_count
        # Every SAMPLE_EVERY-th word as bytes: a bisect runs in C over these, then
        # over a few words of one block (each Python-level step costs ~1 us).
        self._sample = self.words_between(0, self.count, SAMPLE_EVERY) if bisects else []

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> bytes:
        """Word ``index`` as UTF-8 bytes (a sequence, so ``bisect`` works on it)."""
        if not 0 <= index < self.count:
            raise IndexError(index)
        base = self._base
        return self._blob[base + self._offsets[index] : base + self._offsets[index + 1]]  # type: ignore[no-any-return]

    def bisect(self, word: bytes, low: int = 0) -> int:
        """The number of the first word >= ``word`` (from ``low`` on), as ``bisect_left``."""
        assert self._sample or not self.count, "this lookup was made with bisects=False"
        block = bisect_left(self._sample, word)
        start = max(low, (block - 1) * SAMPLE_EVERY)
        return bisect_left(self, word, start, max(start, min(block * SAMPLE_EVERY, self.count)))

    def words_between(self, low: int, high: int, step: int = 1) -> list[bytes]:
        """Words ``low`` to ``high`` (every ``step``-th), without a Python call per word."""
        offsets = self._offsets[low : high + 1].tolist()
        blob, base = self._blob, self._base
        return [blob[base + offsets[i] : base + offsets[i + 1]] for i in range(0, high - low, step)]

    def words_at(self, numbers: Iterable[int]) -> list[str]:
        """The words of these numbers, decoded."""
        offsets, blob, base = self._offsets, self._blob, self._base
        return [blob[base + offsets[i] : base + offsets[i + 1]].decode() for i in numbers]

    def find(self, word: bytes) -> int:
        """The number of ``word``, or -1 if the catalog has no such word."""
        if self.count == 0:
            return -1
        slot = word_hash(word) & self._mask
        for position in range(self._starts[slot], self._starts[slot + 1]):
            index = self._bucket_words[position]
            if self[index] == word:
                return index
        return -1
