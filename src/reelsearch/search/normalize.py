"""Text normalization shared by indexing and querying.

Titles and queries go through the same function, so "Amélie", "AMELIE" and
"amelie!" all become ``amelie``. Done once per title at import time and once
per query, never per row at search time.
"""

from __future__ import annotations

import re
import unicodedata

# Letters NFKD does not decompose into a base letter plus a mark.
_FOLD_LETTERS = {"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i"}
# Characters remembered by the fold table: the scripts titles are written in
# come to a few thousand; past this (a stream of rare code points) each new
# one is still folded right, only not remembered.
_REMEMBERED_CHARACTERS = 1 << 16


class _FoldTable(dict[int, str | int | None]):
    """``str.translate`` table after NFKD: folds ``_FOLD_LETTERS`` and drops combining
    marks, in one C pass. Each code point is classified the first time it is met
    (``__missing__``), then looked up like any dict entry, where a generator over
    the characters cost a Python step per character (half the import's normalize)."""

    def __missing__(self, code: int) -> str | int | None:
        char = chr(code)
        folded: str | int | None = _FOLD_LETTERS.get(char)
        if folded is None:
            folded = None if unicodedata.combining(char) else code
        if len(self) < _REMEMBERED_CHARACTERS:
            self[code] = folded
        return folded


_FOLD_TABLE = _FoldTable()
# Apostrophes join ("Schindler's" -> "schindlers"); "&" reads as "and".
_JOINERS = str.maketrans({"'": "", "’": "", "`": "", "´": "", "&": " and "})
# Anything but a letter or digit separates words; non-Latin scripts are kept.
_NOT_WORD = re.compile(r"[\W_]+")

# Between a movie's titles in its title-index document: "spider man \ue000 el
# hombre arana". A private-use character: normalize() turns it into a space,
# so no query can hold it, but the FTS5 tokenizer keeps it as a token, which
# stops a phrase from running from one title into the next (on PostgreSQL the
# same gap is a skipped tsvector position: catalog/tsvector.py).
TITLE_SEPARATOR = "\ue000"
JOINED_TITLES = f" {TITLE_SEPARATOR} "


def normalize(text: str) -> str:
    """Lower-case words separated by single spaces; accents and punctuation gone."""
    text = text.translate(_JOINERS)
    if text.isascii():  # the common case skips Unicode decomposition entirely
        return _NOT_WORD.sub(" ", text.lower()).strip()
    # Case-folded again after NFKD: a compatibility character can decompose into
    # upper-case letters ("™" -> "TM", "ℌ" -> "H"), which made normalize() not
    # idempotent and "Brand™" a word no typed query could equal (found by fuzzing).
    text = unicodedata.normalize("NFKD", text.casefold()).casefold().translate(_FOLD_TABLE)
    return _NOT_WORD.sub(" ", text).strip()


def word_key(normalized: str) -> str:
    """The words of a normalized title in sorted order: equal for any word order."""
    return " ".join(sorted(normalized.split()))
