"""The PostgreSQL estimates' remembered title counts answer as the vocabulary does, and
an alternative of several words is estimated as independent words.

``TitleCounts`` (search/postgres_estimates.py) keeps each word's count once worked out,
so the walk-or-GIN choice of a search costs a dictionary lookup per word (0022); it
must never answer differently from the vocabulary it remembers.
"""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import pytest

from reelsearch.search import postgres_estimates
from reelsearch.search.plan import Alternative
from reelsearch.search.postgres_estimates import (
    TitleCounts,
    alternative_estimate,
    alternative_titles,
)
from reelsearch.search.vocabulary import Vocabulary

WORDS = [("alien", 30), ("aliens", 20), ("alienated", 1), ("all", 400), ("love", 99)]


def test_counts_are_the_vocabularys() -> None:
    """Whole words and prefixes, up to any bound, asked once or again: the vocabulary's
    own answers (a prefix sums its words until the bound is reached)."""
    vocabulary = Vocabulary(WORDS)
    counts = TitleCounts(vocabulary)
    asked = [
        ("alien", False, 1000), ("alien", True, 1000), ("alien", True, 25),
        ("al", True, 10_000), ("al", True, 100), ("zz", True, 100), ("zz", False, 5),
    ]  # fmt: skip
    for _ in range(2):
        for word, prefix, up_to in asked:
            expected = vocabulary.titles_with(word, prefix=prefix, up_to=up_to)
            assert expected == counts.titles_with(word, prefix=prefix, up_to=up_to)
    assert [30, 0] == [counts.doc_count("alien"), counts.doc_count("zz")]
    assert [51, 30, 451] == [
        counts.titles_with("alien", prefix=True, up_to=1000),
        counts.titles_with("alien", prefix=True, up_to=25),  # stops at the first word past 25
        counts.titles_with("al", prefix=True, up_to=10_000),
    ]


def test_counts_start_over_past_their_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past REMEMBERED_COUNTS entries the remembered counts are dropped, and the
    answers stay right."""
    monkeypatch.setattr(postgres_estimates, "REMEMBERED_COUNTS", 2)
    counts = TitleCounts(Vocabulary(WORDS))
    for word, docs in WORDS:
        assert docs == counts.doc_count(word)
        assert len(counts._docs) <= 2
    assert [51, 451] == [
        counts.titles_with("alien", prefix=True, up_to=1000),
        counts.titles_with("al", prefix=True, up_to=10_000),
    ]


def test_an_alternative_of_several_words_is_estimated_as_independent_words() -> None:
    """ "#2.6" is the alternative '2' & '6':*: estimated as the catalog times each word's
    share (independent words, as slots are), not as its rarer word's count, which said
    a walk of the rank index would meet a match 30 times as often as it does."""
    counts = TitleCounts(Vocabulary([("2", 200), ("6", 50), ("60", 50), ("26", 10)]))
    split = Alternative(("2", "6"), prefix=True)
    assert 100 == alternative_titles(split, counts, 1000)  # the upper bound: '6':*
    assert 200 * 100 / 10_000 == alternative_estimate(split, counts, 10_000, 1000)
    assert 10 == alternative_estimate(Alternative(("26",)), counts, 10_000, 1000)


def test_a_prefixs_most_used_word_is_a_floor_of_its_titles() -> None:
    """The most titles one word the prefix begins is in, remembered as the vocabulary
    answers it; with words added since the import, their merged counts; none: 0."""
    vocabulary = Vocabulary(WORDS)
    counts = TitleCounts(vocabulary)
    assert [400, 30, 30, 0] == [
        counts.most_titles_with_prefix(p) for p in ("a", "alien", "alien", "zz")
    ]
    added = vocabulary.with_added({"alienz": 45, "all": -390})
    assert [45, 45, 0] == [added.most_titles_with_prefix(p) for p in ("alien", "al", "zz")]
