"""Typo candidates for a query word, from the catalog's vocabulary.

Symmetric-delete lookup (SymSpell): every vocabulary word is indexed under
the strings left after deleting up to ``d`` of its letters; a query word
reaches its candidates through its own deletes. Index keys are 64-bit
hashes in one sorted numpy array, so a 1 M-title vocabulary costs tens of
megabytes instead of the gigabyte a dict of strings would, and a lookup is
a vectorised binary search. Candidates are then confirmed with the real
edit distance (adjacent transposition counts as one typo).

The rules: no typos in words under 5 letters, one from 5, two from 9, and
never in a word with a digit (so "2001" never matches "2000"). The length
that counts is the longer of the two words, so a letter dropped from a
5-letter title word ("grry" for "Gerry") is still one forgiven typo.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import numpy as np
from rapidfuzz.distance import OSA

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


def _deletes(word: str, depth: int) -> set[str]:
    """``word`` and every string left after deleting up to ``depth`` letters."""
    level = {word}
    found = {word}
    for _ in range(depth):
        level = {w[:i] + w[i + 1 :] for w in level if len(w) > 1 for i in range(len(w))}
        found |= level
    return found


class TypoIndex:
    """Words of the catalog reachable within the allowed typos of a query word."""

    def __init__(self, words: Iterable[tuple[str, int]]) -> None:
        """``words``: ``(word, document_count)`` pairs, as the title index reports them."""
        self.words: list[str] = []
        self.doc_counts: list[int] = []
        keys: list[int] = []
        owners: list[int] = []
        for word, docs in words:
            if len(word) < _MIN_INDEXED or any(ch.isdigit() for ch in word):
                continue
            index = len(self.words)
            self.words.append(word)
            self.doc_counts.append(docs)
            depth = 2 if len(word) >= _DEPTH_TWO_FROM else 1
            hashes = [hash(d) for d in _deletes(word, depth)]
            keys.extend(hashes)
            owners.extend([index] * len(hashes))
        key_array = np.fromiter(keys, dtype=np.int64, count=len(keys))
        order = np.argsort(key_array, kind="stable")
        self._keys = key_array[order]
        self._owners = np.asarray(owners, dtype=np.int32)[order]
        # Query words repeat ("love", "night"): remember their candidates. The
        # cache lives and dies with this index, i.e. with one catalog version.
        self._cached_candidates = lru_cache(maxsize=CANDIDATE_CACHE_SIZE)(self._candidates)

    def __len__(self) -> int:
        return len(self.words)

    def candidates(self, word: str) -> tuple[str, ...]:
        """Other words within the allowed typos of ``word``: closest, then most common."""
        return self._cached_candidates(word)

    def _candidates(self, word: str) -> tuple[str, ...]:
        budget = allowed_typos(word)
        if budget == 0 or not len(self._keys):
            return ()
        probes = np.fromiter([hash(d) for d in _deletes(word, budget)], dtype=np.int64)
        lo = np.searchsorted(self._keys, probes, side="left")
        hi = np.searchsorted(self._keys, probes, side="right")
        owners: set[int] = set()
        for start, stop in zip(lo.tolist(), hi.tolist(), strict=True):
            if start != stop:
                owners.update(self._owners[start:stop].tolist())
        found: list[tuple[int, int, str]] = []
        for owner in owners:
            other = self.words[owner]
            allowed = typos_for_length(max(len(word), len(other)))
            if other == word or abs(len(other) - len(word)) > allowed:
                continue
            distance = OSA.distance(word, other, score_cutoff=allowed)
            if distance <= allowed:
                found.append((distance, -self.doc_counts[owner], other))
        found.sort()
        return tuple(other for _, _, other in found[:MAX_CANDIDATES])
