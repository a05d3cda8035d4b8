"""Titles split into words for the postings and the word index (search/title_tokens.py)."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import pytest

from reelsearch.search import title_tokens
from reelsearch.search.normalize import TITLE_SEPARATOR
from reelsearch.search.title_tokens import tokenize_titles


def test_each_word_of_a_title_counts_once_with_its_rank() -> None:
    """Words are numbered in sorted order, each (word, rank) pair appears once even when a
    title repeats the word, and the separator is a word of its own but in no count."""
    tokens = tokenize_titles(
        [(2, "the the matrix", None), (1, "matrix reloaded", "la matrix"), (3, "", None)]
    )
    assert ["la", "matrix", "reloaded", "the", TITLE_SEPARATOR] == tokens.vocabulary
    pairs = list(zip(tokens.word_numbers().tolist(), tokens.pair_ranks().tolist(), strict=True))
    assert [(0, 1), (1, 1), (1, 2), (2, 1), (3, 2), (4, 1)] == pairs
    assert [("la", 1), ("matrix", 2), ("reloaded", 1), ("the", 1)] == tokens.document_counts()
    assert [2, 1, 3] == tokens.ranks.tolist()
    expected = [b"the the matrix", f"matrix reloaded {TITLE_SEPARATOR} la matrix".encode(), b""]
    assert expected == tokens.documents


def test_titles_split_across_chunks_are_numbered_as_one_vocabulary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More titles than one chunk: a word first seen in a later chunk gets the number its
    sorted place gives, the same as in a single chunk."""
    rows = [(rank, f"w{rank % 7} common", None) for rank in range(1, 30)]
    whole = tokenize_titles(rows)
    monkeypatch.setattr(title_tokens, "_CHUNK_TITLES", 4)
    chunked = tokenize_titles(rows)
    assert whole.vocabulary == chunked.vocabulary
    assert whole.pairs.tolist() == chunked.pairs.tolist()
    assert 29 == chunked.document_counts()[0][1]
