"""Whether a title document holds words side by side: FTS5's phrase query (and
tsquery's ``<->``), tested on the title text in memory (``rank_sets.py``).

A document's words are single-spaced and its titles apart by " \\ue000 " (a token
no phrase holds), so words side by side are a substring of the document in
spaces: one C search, not a scan of its words. The last word of a phrase may be
whole, begun (FTS5's ``"last"*``: any word it begins) or one of a prefix's
completions; "at the start" is the primary title's first words, where FTS5's
``^`` and the PostgreSQL document's ``'^'`` token anchor a phrase.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

# Tests one title document (``TitlePostings.document``).
DocumentTest = Callable[[str], bool]


def phrase_test(
    tokens: Sequence[str],
    prefix: bool,
    completions: tuple[str, ...] | None,
    *,
    at_start: bool = False,
) -> DocumentTest:
    """The test of a document for ``tokens`` side by side (two or more), the last one a
    prefix with ``prefix``: begun (``completions`` None) or one of ``completions`` (none:
    the word itself, which no title holds, as ``TextMatch._prefix_options`` writes it);
    at the start of the primary title with ``at_start``."""
    head = " " + " ".join(tokens[:-1]) + " "
    last = tokens[-1]
    if not prefix or completions is None:  # the last word whole, or begun
        text = head + last + ("" if prefix else " ")
        if at_start:
            return lambda document: (" " + document + " ").startswith(text)
        return lambda document: text in " " + document + " "
    fits = frozenset(completions or (last,)).__contains__
    if at_start:
        return lambda document: _opens_with(document, head, fits)
    return lambda document: _holds_phrase(document, head, fits)


def _opens_with(document: str, head: str, fits: Callable[[str], bool]) -> bool:
    """Whether ``document`` opens with the words of ``head`` (" w1 w2 "), then a word
    that ``fits``."""
    padded = " " + document + " "
    after = len(head)
    return padded.startswith(head) and fits(padded[after : padded.find(" ", after)])


def _holds_phrase(document: str, head: str, fits: Callable[[str], bool]) -> bool:
    """Whether ``document`` holds the words of ``head`` (" w1 w2 ") side by side, then a
    word that ``fits``."""
    padded = " " + document + " "
    start = padded.find(head)
    while start >= 0:
        after = start + len(head)
        end = padded.find(" ", after)  # -1: the head ends the document
        if end > after and fits(padded[after:end]):
            return True
        start = padded.find(head, start + 1)
    return False
