"""A title document's phrase test (search/phrases.py): words side by side, the last
whole, begun or one of a prefix's completions, anywhere or at the primary title's start,
never across two titles."""

from __future__ import annotations

from reelsearch.search.normalize import JOINED_TITLES
from reelsearch.search.phrases import phrase_test

DOCUMENT = JOINED_TITLES.join(["the night of the hunter", "la nuit du chasseur"])


def test_a_whole_last_word_is_a_word_not_its_beginning() -> None:
    """ "night of" holds; "night o" as a whole word does not; "hunter" ends the title."""
    assert phrase_test(("night", "of"), False, None)(DOCUMENT)
    assert not phrase_test(("night", "o"), False, None)(DOCUMENT)
    assert phrase_test(("the", "hunter"), False, None)(DOCUMENT)


def test_a_begun_last_word_is_any_word_it_begins() -> None:
    """With no completions (FTS5's "hun"*), any word the last begins; with completions,
    only those; with none, only the word itself (which no title holds)."""
    assert phrase_test(("the", "hun"), True, None)(DOCUMENT)
    assert phrase_test(("the", "hun"), True, ("hunter", "hunt"))(DOCUMENT)
    assert not phrase_test(("the", "hun"), True, ("hunt",))(DOCUMENT)
    assert not phrase_test(("the", "hun"), True, ())(DOCUMENT)


def test_at_the_start_is_the_primary_titles_start() -> None:
    """ "the night" opens the primary title; "of the" and the alternate title's "la nuit"
    do not, whatever the last word's form."""
    for prefix, completions in ((False, None), (True, None), (True, ("night", "nights"))):
        assert phrase_test(("the", "night"), prefix, completions, at_start=True)(DOCUMENT)
    assert not phrase_test(("of", "the"), False, None, at_start=True)(DOCUMENT)
    assert not phrase_test(("la", "nuit"), False, None, at_start=True)(DOCUMENT)
    assert not phrase_test(("la", "nu"), True, ("nuit",), at_start=True)(DOCUMENT)
    assert phrase_test(("la", "nu"), True, ("nuit",))(DOCUMENT)


def test_a_phrase_never_runs_from_one_title_into_the_next() -> None:
    """ "hunter la" spans the separator between the two titles: no match."""
    assert not phrase_test(("hunter", "la"), False, None)(DOCUMENT)
    assert not phrase_test(("hunter", "la"), True, None)(DOCUMENT)
    assert not phrase_test(("hunter", "l"), True, ("la",))(DOCUMENT)
