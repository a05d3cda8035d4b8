"""The word overlay (search/vocabulary.py, search/typos.py): titles added and removed by
writes since the stored index, merged into every lookup as if the index were rebuilt."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

from reelsearch.search.typos import TypoIndex
from reelsearch.search.vocabulary import Vocabulary
from reelsearch.search.word_store import build_word_arrays

BASE = [("matrix", 3), ("matrixes", 1), ("heat", 1), ("heated", 2), ("zorba", 1)]


def _rebuilt(overlay: dict[str, int]) -> Vocabulary:
    """What a fresh build over the merged counts gives."""
    merged = dict(BASE)
    for word, docs in overlay.items():
        merged[word] = merged.get(word, 0) + docs
    return Vocabulary([(w, n) for w, n in merged.items() if n > 0])


def test_removed_words_are_gone_and_added_ones_found() -> None:
    """A word whose titles were all deleted (heat: -1) is no longer in the vocabulary, its
    prefix no longer matches through it, its count is 0; an added word (zorblax) is in,
    with its count; the size is what a rebuild would give."""
    overlay = {"heat": -1, "zorblax": 2, "matrix": -1}
    vocabulary = Vocabulary(arrays=build_word_arrays(BASE, ()), added=overlay)
    rebuilt = _rebuilt(overlay)
    assert (False, True, 0, 2, 2) == (
        "heat" in vocabulary, "zorblax" in vocabulary, vocabulary.doc_count("heat"),
        vocabulary.doc_count("zorblax"), vocabulary.doc_count("matrix"),
    )  # fmt: skip
    assert len(rebuilt) == len(vocabulary)
    assert vocabulary.has_prefix("heat")  # "heated" still holds it
    gone = Vocabulary(arrays=build_word_arrays(BASE, ()), added={"zorba": -1})
    assert (False, True) == (gone.has_prefix("zorb"), gone.has_prefix("zorbl") is False)
    assert ("heated",) == vocabulary.completions("heate")


def test_typo_candidates_follow_the_overlay() -> None:
    """A typo finds an added word (not in the stored index) and no longer finds a word whose
    titles were all deleted."""
    arrays = build_word_arrays(BASE, ())
    typos = TypoIndex(arrays, {"zorblax": 1, "zorba": -1})
    assert "zorblax" in typos.candidates("zorblix")
    assert "zorba" not in typos.candidates("zorbo")
    assert "zorba" in TypoIndex(arrays).candidates("zorbo")
