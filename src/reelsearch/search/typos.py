"""Typo candidates for a query word, from the catalog's vocabulary.

Symmetric-delete lookup (SymSpell): every vocabulary word is indexed under
the strings left after deleting up to ``d`` of its letters; a query word
reaches its candidates through its own deletes. Index keys are stable 64-bit
hashes (``search/delete_hashes.py``) in one sorted array, built at import and mapped read-only by
every worker (``search/word_store.py``), so a 1 M-title vocabulary costs
tens of shared megabytes instead of the gigabyte a dict of strings would,
and a lookup is a vectorised binary search. Candidates are then confirmed
with the real edit distance (adjacent transposition counts as one typo).

Words added after the import (single-movie writes) live in a small
in-memory overlay that lookups merge with the mapped base.

The rules: no typos in words under 5 letters, one from 5, two from 9, and
never in a word with a digit (so "2001" never matches "2000"). The length
that counts is the longer of the two words, so a letter dropped from a
5-letter title word ("grry" for "Gerry") is still one forgiven typo.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from rapidfuzz.distance import OSA

from reelsearch.search.delete_hashes import (
    LAYOUT_UP_TO,
    code_points,
    delete_hashes,
    deletion_hashes,
    word_delete_hashes,
)
from reelsearch.search.word_arrays import WordArrays, WordLookup

# Allowed typos by word length: the rule, same as Typesense's defaults.
ONE_TYPO_FROM = 5
TWO_TYPOS_FROM = 9
# A word needs deletes stored as deep as any query word that may reach it:
# a 9-letter query with two typos can match a 7-letter word.
_DEPTH_TWO_FROM = TWO_TYPOS_FROM - 2
_MIN_INDEXED = ONE_TYPO_FROM - 1
# Words whose candidates are remembered (a few MB).
CANDIDATE_CACHE_SIZE = 50_000
# More candidates than this per word only slow the index query down.
MAX_CANDIDATES = 12
# Words up to this long have their deletes hashed a column (deleted position or
# pair) at a time for all words of a length; longer ones one string at a time.
VECTORISED_UP_TO = 40


def typos_for_length(length: int) -> int:
    """Typos allowed between two words, the longer of which has ``length`` letters."""
    if length >= TWO_TYPOS_FROM:
        return 2
    return 1 if length >= ONE_TYPO_FROM else 0


def allowed_typos(word: str) -> int:
    """The most typos any candidate of ``word`` may have (it may be a letter longer)."""
    if any(ch.isdigit() for ch in word):
        return 0
    return typos_for_length(len(word) + 1)


def is_indexed(word: str) -> bool:
    """Whether typos may ever reach ``word`` (long enough, no digit)."""
    # isalpha() first: one C call for most words (a letter is never a digit).
    return len(word) >= _MIN_INDEXED and (word.isalpha() or not any(c.isdigit() for c in word))


def _index_depth(word: str) -> int:
    return 2 if len(word) >= _DEPTH_TWO_FROM else 1


def owner_bits(word_count: int) -> int:
    """Low bits of a packed typo key that hold the owning word's number."""
    return max(1, (word_count - 1).bit_length())


def typo_keys(
    ordered: Sequence[tuple[str, int]],
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int32], int]:
    """Sorted delete hashes of the indexable words of ``ordered`` (sorted ``(word, docs)``),
    the number in ``ordered`` of the word each came from, and how many words are indexed.

    Words are hashed a length at a time (``search/delete_hashes.py``). A key
    keeps the hash's top ``64 - owner_bits`` bits: packed with its owner into
    one uint64, a plain sort (7x faster than an argsort of 11 M keys) orders
    both, and a word's repeated deletes ("aab" less either "a") fall together.
    """
    by_length: dict[int, list[int]] = {}
    for index, (word, _) in enumerate(ordered):
        if is_indexed(word):
            by_length.setdefault(len(word), []).append(index)
    bits = np.uint64(owner_bits(len(ordered)))
    packed: list[npt.NDArray[np.uint64]] = []
    for length, numbers in sorted(by_length.items()):
        if length > VECTORISED_UP_TO:
            # Few such words, and their deletes are mostly alike ("xxxx..."): made as
            # strings and de-duplicated first, as a 3,000-letter word's 4.5 M pairs
            # of positions would take minutes a column at a time.
            for number in numbers:
                word = ordered[number][0]
                hashes = word_delete_hashes(word, _index_depth(word))
                packed.append((hashes >> bits << bits) | np.uint64(number))
            continue
        codes = code_points([ordered[i][0] for i in numbers], length)
        hashes = delete_hashes(codes, 2 if length >= _DEPTH_TWO_FROM else 1)
        owners = np.asarray(numbers, dtype=np.uint64)[:, None]
        packed.append(((hashes >> bits << bits) | owners).ravel())
    keys = np.sort(np.concatenate(packed)) if packed else np.zeros(0, np.uint64)
    if len(keys):
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    owner_array = (keys & ((np.uint64(1) << bits) - np.uint64(1))).astype(np.int32)
    indexed = sum(len(numbers) for numbers in by_length.values())
    return keys >> bits, owner_array, indexed


class TypoIndex:
    """Words of the catalog reachable within the allowed typos of a query word.

    ``arrays`` is the catalog's (mapped or built); ``added``: words written
    since, with the titles they were added to, merged into every lookup.
    """

    def __init__(self, arrays: WordArrays, added: Mapping[str, int] | None = None) -> None:
        self._arrays = arrays
        self._lookup = WordLookup(arrays, bisects=False)
        self._counts = arrays.counts()
        self._keys = arrays.sections["typo_keys"]
        self._key_shift = np.uint64(owner_bits(arrays.word_count))
        self._owners = arrays.sections["typo_owners"]
        self._added = dict(added or {})
        # Delete hash -> the added words (not in the base) it leads to: few, in memory.
        self._added_keys: dict[int, list[str]] = {}
        new_words = gone = 0
        for word, docs in self._added.items():
            if not is_indexed(word):
                continue
            index = self._lookup.find(word.encode())
            if index < 0 and docs > 0:
                new_words += 1
                for key in word_delete_hashes(word, _index_depth(word)).tolist():
                    self._added_keys.setdefault(key, []).append(word)
            elif index >= 0 and self._counts[index] + docs <= 0:
                gone += 1  # every title holding it was deleted or renamed
        self._size = arrays.typo_word_count + new_words - gone
        # No word is longer (in bytes, so in letters) than this: a query word more
        # than its budget longer has no candidates, and its deletes are not made
        # (a 512-letter word would make 130 k of them).
        lengths = np.diff(arrays.sections["word_offsets"])
        self._longest = max([int(lengths.max()) if len(lengths) else 0, *map(len, self._added)])
        # Query words repeat ("love", "night"): remember their candidates. The
        # cache lives and dies with this index, i.e. with one catalog version.
        self._cached_candidates = lru_cache(maxsize=CANDIDATE_CACHE_SIZE)(self._candidates)

    def __len__(self) -> int:
        return self._size

    def with_added(self, words: Mapping[str, int]) -> TypoIndex:
        """This index plus ``words`` (word -> titles added): a new index, the base shared."""
        merged = dict(self._added)
        for word, docs in words.items():
            merged[word] = merged.get(word, 0) + docs
        return TypoIndex(self._arrays, merged)

    def candidates(self, word: str) -> tuple[str, ...]:
        """Other words within the allowed typos of ``word``: closest, then most common."""
        return self._cached_candidates(word)

    def _candidates(self, word: str) -> tuple[str, ...]:
        budget = allowed_typos(word)
        if budget == 0 or len(word) > self._longest + budget:
            return ()
        # Repeats ("aab" less either "a") only repeat a lookup: cheaper than removing them.
        hashes = (
            deletion_hashes(word, budget)
            if len(word) <= LAYOUT_UP_TO
            else word_delete_hashes(word, budget)
        )
        others: dict[str, int] = {}  # candidate -> titles holding it
        if len(self._keys):
            probes = hashes >> self._key_shift
            lo = np.searchsorted(self._keys, probes, side="left")
            counts = np.searchsorted(self._keys, probes, side="right") - lo
            total = int(counts.sum())
            if total:
                # Every owner of every key found, in one gather: each key's run of
                # positions is lo + 0 .. count - 1 (no Python step per key).
                firsts = np.repeat(lo - (np.cumsum(counts) - counts), counts)
                numbers = list(set(self._owners[firsts + np.arange(total)].tolist()))
                added, docs_of = self._added, self._counts
                for owner, other in zip(numbers, self._lookup.words_at(numbers), strict=True):
                    docs = docs_of[owner] + added.get(other, 0)
                    if docs > 0:  # 0: no title holds it since the writes
                        others[other] = docs
        if self._added_keys:
            for key in hashes.tolist():
                for other in self._added_keys.get(key, ()):
                    others[other] = self._added[other]
        found: list[tuple[int, int, str]] = []
        for other, docs in others.items():
            allowed = typos_for_length(max(len(word), len(other)))
            if other == word or abs(len(other) - len(word)) > allowed:
                continue
            distance = OSA.distance(word, other, score_cutoff=allowed)
            if distance <= allowed:
                found.append((distance, -docs, other))
        found.sort()
        return tuple(other for _, _, other in found[:MAX_CANDIDATES])
