"""Where the matched words of a hit are in its title, as offsets a client can render.

Titles are matched in their normalized form; highlights are offsets into the
title as shown. ``title_words`` splits a displayed title into the same words
``normalize`` makes, each with the span of text it came from, so a matched
word maps back to its characters. Offsets are Unicode code points, end
exclusive. Computed only for the hits of the page returned.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from reelsearch.search.normalize import normalize

# A run of letters and digits, with the apostrophes normalize() joins words
# across ("Schindler's" is one word), or an "&" (normalized to "and").
_CHUNK = re.compile(r"[^\W_]+(?:['’`´][^\W_]+)*|&")


def title_words(title: str) -> list[tuple[str, int, int]]:
    """Each normalized word of ``title`` with the [start, end) of its text."""
    found = []
    for chunk in _CHUNK.finditer(title):
        text = chunk.group()
        if text.isascii() and text.isalnum():  # what normalize() makes of it: lower case
            found.append((text.lower(), chunk.start(), chunk.end()))
            continue
        for word in normalize(text).split():
            found.append((word, chunk.start(), chunk.end()))
    return found


def spans(title: str, matched: Collection[str], prefix: str | None = None) -> list[list[int]]:
    """[[start, end], ...] of the words of ``title`` in ``matched``.

    A word matched as the completion of ``prefix`` (the unfinished last word
    typed) is highlighted only as far as the prefix reaches when its text
    maps one-to-one onto it (plain ASCII), as search-as-you-type boxes do.

    The words of ``title_words``, walked in one pass: a plain ASCII chunk (most
    of them) is its own lower-cased word, tested and dropped without building
    the list of every word first.
    """
    out: list[list[int]] = []
    for chunk in _CHUNK.finditer(title):
        text = chunk.group()
        if text.isascii() and text.isalnum():
            word = text.lower()
            if word not in matched:
                continue
            start, end = chunk.span()
            if prefix and word != prefix and word.startswith(prefix):
                end = start + len(prefix)
            out.append([start, end])  # one word per chunk: never a repeat of the last span
            continue
        start, end = chunk.span()
        for word in normalize(text).split():
            if word not in matched:
                continue
            stop = end
            if (
                prefix
                and word != prefix
                and word.startswith(prefix)
                and text.isascii()
                and (text.lower() == word)
            ):
                stop = start + len(prefix)
            if out and out[-1][1] == stop and out[-1][0] == start:
                continue  # one chunk that normalized to several matched words
            out.append([start, stop])
    return out
