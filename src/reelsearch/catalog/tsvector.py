"""The PostgreSQL title index's words, written as a tsvector literal.

The importer and the upstream write-back both store titles this way, so
there is one definition of what a title's tsvector holds. The import, which
learns a movie's alternate titles only after the movie, builds the same
value in SQL with ``TITLE_TSVECTOR_FUNCTION`` (created by migration 0002);
the tests compare the two on every row.
"""

from __future__ import annotations

from collections.abc import Sequence

from reelsearch.search.normalize import JOINED_TITLES, TITLE_SEPARATOR

# tsvector positions stop at 16383 and lexemes at 2047 bytes; longer words
# could never be typed into a search box anyway.
MAX_LEXEME_BYTES = 2047


def title_tsvector(norm_title: str, alt_norm_titles: Sequence[str] = ()) -> str:
    """The tsvector literal of a title-index document: ``'^':1 'the':2 'matrix':3``.

    ``'^'`` at position 1, then the words of ``norm_title`` from position 2,
    then each alternate title's words after one skipped position (where FTS5
    holds the separator token): positions are FTS5's token positions + 1,
    so a phrase cannot run from one title into the next on either backend.
    Written by hand rather than by ``to_tsvector``, so PostgreSQL indexes
    exactly the words ``normalize`` made, as FTS5 does on SQLite.
    """
    document = JOINED_TITLES.join([norm_title, *alt_norm_titles])
    words = document.split()
    if (
        alt_norm_titles
        or "'" in document
        or "\\" in document
        or len(document) * 4 > MAX_LEXEME_BYTES
    ):
        return _careful_tsvector(words)
    return " ".join(["'^':1", *[f"'{word}':{n}" for n, word in enumerate(words, start=2)]])


def indexed_words(norm_title: str, alt_norm_titles: Sequence[str] = ()) -> set[str]:
    """The distinct words of a title-index document that its tsvector (and title_words) hold."""
    words = JOINED_TITLES.join([norm_title, *alt_norm_titles]).split()
    return {word for word in words if word != TITLE_SEPARATOR and is_indexable(word)}


def is_indexable(word: str) -> bool:
    return len(word.encode()) <= MAX_LEXEME_BYTES


def _careful_tsvector(words: list[str]) -> str:
    """``title_tsvector`` for separators, words that need escaping or may be too long."""
    parts = ["'^':1"]
    for position, word in enumerate(words, start=2):
        if word == TITLE_SEPARATOR or not is_indexable(word):
            continue
        escaped = word.replace("\\", "\\\\").replace("'", "''")
        parts.append(f"'{escaped}':{position}")
    return " ".join(parts)


# The SQL twin of ``title_tsvector`` over ``norm_title`` and ``movies.alt_norm_titles``
# (the alternates as joined by catalog/titles.py), for the PostgreSQL import's
# staging step and the migration. Same tokens (the document split on spaces,
# a leading one trimmed when the title is empty), same positions, same
# escaping and the same length rule, so the literal parses to the same tsvector.
TITLE_TSVECTOR_FUNCTION = f"""
CREATE FUNCTION title_tsvector(norm_title text, alt_norm_titles text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (
    SELECT concat_ws(' ', '''^'':1', string_agg(
        '''' || replace(replace(word, '\\', '\\\\'), '''', '''''') || ''':' || (n + 1),
        ' ' ORDER BY n))::tsvector
    FROM unnest(string_to_array(
        ltrim(concat_ws('{JOINED_TITLES}', norm_title, alt_norm_titles), ' '), ' '
    )) WITH ORDINALITY AS t (word, n)
    WHERE word <> '{TITLE_SEPARATOR}' AND octet_length(word) <= {MAX_LEXEME_BYTES}
)
"""
