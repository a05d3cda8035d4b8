"""Stable 64-bit hashes of a word and of what is left after deleting letters from it.

The typo index (``search/typos.py``) keys every word by the strings left
after deleting up to two of its letters: about 12 M strings for a 1 M-title
catalog. Making each string and hashing it one at a time took 10-12 s of
CPU per import (bench/RESULTS.md); here every word of one length is a row of
code points, and the hash of each deletion comes out of prefix sums in a few
numpy operations per deleted position, for all words at once (about 20x
less time). No deleted string is ever built.

The hash of ``s_0 .. s_(k-1)`` is ``mix(sum(s_j * P**j) + k * LENGTH)`` mod
2**64, ``mix`` being MurmurHash3's 64-bit finalizer. With ``A_i`` the sum
of the first ``i`` terms, deleting position ``i`` leaves
``A_i + (A_L - A_(i+1)) / P`` (``P`` is odd, so dividing is multiplying by
its inverse mod 2**64), and deleting ``i < k`` leaves
``A_i + (A_k - A_(i+1)) / P + (A_L - A_(k+1)) / P**2``. The same function
hashes the query's deletes, so both sides agree in every process.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

_MODULUS = 1 << 64
_P = 0x100000001B3  # FNV-1a's 64-bit prime: odd, so invertible mod 2**64
_P_INVERSE = np.uint64(pow(_P, -1, _MODULUS))
_P_INVERSE_SQUARED = np.uint64(pow(_P, -2, _MODULUS))
_LENGTH = np.uint64(0x9E3779B97F4A7C15)  # the golden ratio's bits: spreads the length
_MIX_1 = np.uint64(0xFF51AFD7ED558CCD)
_MIX_2 = np.uint64(0xC4CEB9FE1A85EC53)
_SHIFT = np.uint64(33)

U64 = npt.NDArray[np.uint64]

# Words up to this long get their deletions from a cached layout (at most
# 1 + 40 + 780 rows of 40 positions for two typos); longer ones as strings.
LAYOUT_UP_TO = 40


def code_points(words: list[str], length: int) -> U64:
    """``words`` (each ``length`` code points long) as a ``len(words) x length`` matrix."""
    raw = np.frombuffer("".join(words).encode("utf-32-le"), dtype="<u4")
    return raw.reshape(len(words), length).astype(np.uint64)


def _mix(h: U64, length: int | U64) -> U64:
    h = h + np.asarray(length, dtype=np.uint64) * _LENGTH
    h ^= h >> _SHIFT
    h *= _MIX_1
    h ^= h >> _SHIFT
    h *= _MIX_2
    h ^= h >> _SHIFT
    return h


def delete_hashes(codes: U64, depth: int) -> U64:
    """For each row (a word), the hashes of it and of every deletion of up to ``depth``
    letters, one column per deleted position or pair (duplicates left in).

    As the typo index always did, a one-letter string is never shortened to nothing.
    """
    count, length = codes.shape
    with np.errstate(over="ignore"):
        powers = _powers(length)
        prefix = np.zeros((count, length + 1), dtype=np.uint64)
        np.cumsum(codes * powers, axis=1, out=prefix[:, 1:])
        total = prefix[:, length]
        columns = [_mix(total.copy(), length)]
        if depth >= 1 and length > 1:
            for i in range(length):
                rest = (total - prefix[:, i + 1]) * _P_INVERSE
                columns.append(_mix(prefix[:, i] + rest, length - 1))
        if depth >= 2 and length > 2:
            for i in range(length):
                for k in range(i + 1, length):
                    middle = (prefix[:, k] - prefix[:, i + 1]) * _P_INVERSE
                    rest = (total - prefix[:, k + 1]) * _P_INVERSE_SQUARED
                    columns.append(_mix(prefix[:, i] + middle + rest, length - 2))
    return np.stack(columns, axis=1)


def deletes(word: str, depth: int) -> set[str]:
    """``word`` and every string left after deleting up to ``depth`` letters (never all)."""
    level = found = {word}
    for _ in range(depth):
        level = {w[:i] + w[i + 1 :] for w in level if len(w) > 1 for i in range(len(w))}
        found = found | level
    return found


def hash_strings(texts: list[str]) -> U64:
    """The hashes of ``texts``, in one pass: rows padded with zeros, which add nothing
    to the sum (no text holds U+0000), each row's own length mixed in."""
    width = max(len(text) for text in texts)
    raw = b"".join(text.encode("utf-32-le").ljust(4 * width, b"\0") for text in texts)
    codes = np.frombuffer(raw, dtype="<u4").reshape(len(texts), width).astype(np.uint64)
    lengths = np.fromiter((len(text) for text in texts), dtype=np.uint64, count=len(texts))
    with np.errstate(over="ignore"):
        return _mix((codes * _powers(width)).sum(axis=1, dtype=np.uint64), lengths)


@lru_cache(maxsize=64)
def _powers(length: int) -> U64:
    """``P**0 .. P**(length - 1)`` mod 2**64."""
    powers = np.ones(length, dtype=np.uint64)
    with np.errstate(over="ignore"):
        np.cumprod(np.full(length - 1, _P, dtype=np.uint64), out=powers[1:])
    return powers


def word_delete_hashes(word: str, depth: int) -> U64:
    """The hashes of ``word`` and of its distinct deletions of up to ``depth`` letters.

    For one (query) word the deletions are one gather of its code points through
    a layout of kept positions made once per (length, depth): a few numpy calls
    whatever the length, where making the strings (a few hundred for a 12-letter
    word with two typos) and hashing them cost 3-4x that. Past
    ``LAYOUT_UP_TO`` letters the strings are made and de-duplicated first: a
    long run of one letter has far fewer distinct deletions than positions.
    """
    length = len(word)
    if length > LAYOUT_UP_TO or length == 0:
        return hash_strings(list(deletes(word, depth)))
    return np.unique(deletion_hashes(word, depth))


def deletion_hashes(word: str, depth: int) -> U64:
    """``word_delete_hashes`` with repeats left in ("aab" less either "a"), for a
    word of at most ``LAYOUT_UP_TO`` letters: what a lookup needs, without the
    sort that removing them costs."""
    length = len(word)
    kept, lengths = _deletion_layout(length, depth)
    codes = np.zeros(length + 1, dtype=np.uint64)  # the last one: padding, adds nothing
    codes[:length] = np.frombuffer(word.encode("utf-32-le"), dtype="<u4")
    with np.errstate(over="ignore"):
        sums = (codes[kept] * _powers(length)).sum(axis=1, dtype=np.uint64)
        return _mix(sums, lengths)


@lru_cache(maxsize=128)
def _deletion_layout(length: int, depth: int) -> tuple[npt.NDArray[np.intp], U64]:
    """For a word of ``length``, the positions each deletion keeps (a row each, padded
    with ``length``, which indexes a zero) and each deletion's length: the word
    itself, less one letter, less two, as ``deletes`` makes them (never empty)."""
    rows: list[list[int]] = [list(range(length))]
    if depth >= 1 and length > 1:
        rows += [[j for j in range(length) if j != i] for i in range(length)]
    if depth >= 2 and length > 2:
        rows += [
            [j for j in range(length) if j != i and j != k]
            for i in range(length)
            for k in range(i + 1, length)
        ]
    lengths = np.array([len(row) for row in rows], dtype=np.uint64)
    kept = np.full((len(rows), length), length, dtype=np.intp)
    for number, row in enumerate(rows):
        kept[number, : len(row)] = row
    kept.setflags(write=False)
    lengths.setflags(write=False)
    return kept, lengths
