"""The PostgreSQL title index's words, written as a tsvector literal.

The importer and the upstream write-back both store titles this way, so
there is one definition of what a title's tsvector holds.
"""

from __future__ import annotations

# tsvector positions stop at 16383 and lexemes at 2047 bytes; longer words
# could never be typed into a search box anyway.
MAX_LEXEME_BYTES = 2047


def title_tsvector(norm_title: str) -> str:
    """The tsvector literal of a normalized title: ``'^':1 'the':2 'matrix':3``.

    Written by hand rather than by ``to_tsvector``, so PostgreSQL indexes
    exactly the words ``normalize`` made, as FTS5 does on SQLite.
    """
    words = norm_title.split()
    if "'" in norm_title or "\\" in norm_title or len(norm_title) * 4 > MAX_LEXEME_BYTES:
        return _careful_tsvector(words)
    return " ".join(["'^':1", *[f"'{word}':{n}" for n, word in enumerate(words, start=2)]])


def indexed_words(norm_title: str) -> set[str]:
    """The distinct words of a title that its tsvector (and title_words) hold."""
    return {word for word in norm_title.split() if is_indexable(word)}


def is_indexable(word: str) -> bool:
    return len(word.encode()) <= MAX_LEXEME_BYTES


def _careful_tsvector(words: list[str]) -> str:
    """``title_tsvector`` for words that need escaping or may be too long to index."""
    parts = ["'^':1"]
    for position, word in enumerate(words, start=2):
        if not is_indexable(word):
            continue
        escaped = word.replace("\\", "\\\\").replace("'", "''")
        parts.append(f"'{escaped}':{position}")
    return " ".join(parts)
