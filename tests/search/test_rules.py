"""Unit tests of the relevance rules on a tiny in-memory catalog: plan, matching,
rulebook, highlights. No database: the snapshot is built from listed facts."""

# ruff: noqa: SIM300  -- the project's asserts read `expected == actual`

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reelsearch.search.assessment import ALL_WORDS, EXACT, WITH_TYPOS
from reelsearch.search.highlight import spans
from reelsearch.search.matching import TextMatch
from reelsearch.search.plan import MAX_TYPO_WORD_LENGTH, Alternative, plan_query
from reelsearch.search.query import parse_search
from reelsearch.search.rulebook import RuleFiles, build_rules, parse_synonyms
from reelsearch.search.snapshot import CatalogFacts, CatalogSnapshot
from reelsearch.search.syntax import FTS5

TITLES = [
    "spider man", "the matrix", "rocky ii", "lavventura", "unknown", "star wars",
    "the brain", "alien", "damelie poulain",
]  # fmt: skip
RULES = build_rules("lotr => lord of the rings\n", "the\nof\n")


def snapshot_of(titles: list[str]) -> CatalogSnapshot:
    """A snapshot of these normalized titles, each word counted once per title."""
    counts: dict[str, int] = {}
    for title in titles:
        for word in set(title.split()):
            counts[word] = counts.get(word, 0) + 1
    facts = CatalogFacts(
        version=1, movie_count=len(titles), vocabulary=sorted(counts.items()), initialisms=[],
        genres=[], genre_counts=[], decades=[], kinds=["movie"],
    )  # fmt: skip
    return CatalogSnapshot.build(facts)


@pytest.fixture(scope="module")
def snapshot() -> CatalogSnapshot:
    return snapshot_of(TITLES)


def plan(snapshot: CatalogSnapshot, q: str):  # type: ignore[no-untyped-def]
    return plan_query(parse_search([("q", q)]), RULES, snapshot.vocabulary)


def test_a_rare_joined_word_may_be_split(snapshot: CatalogSnapshot) -> None:
    """ "spiderman" also counts as "spider man", ranked after the word as typed."""
    slot = plan(snapshot, "spiderman ").slots[0]
    assert Alternative(("spider", "man"), respaced=True) in slot.alternatives
    assert ("spiderman",) == slot.typed.tokens


def test_numerals_and_stop_words_and_years(snapshot: CatalogSnapshot) -> None:
    """ "2" may be "ii"; "the" is optional beside other words; a plausible year is read as one."""
    rocky = plan(snapshot, "rocky 2 ")
    assert Alternative(("ii",)) in rocky.slots[1].alternatives
    the_matrix = plan(snapshot, "the matrix ")
    assert (True, False) == (the_matrix.slots[0].optional, the_matrix.slots[1].optional)
    alien = plan(snapshot, "alien 1979 ")
    assert 1979 == alien.year


def test_synonyms_and_quoted_phrases(snapshot: CatalogSnapshot) -> None:
    """A synonym is another alternative of its slot; a quoted phrase has only itself."""
    lotr = plan(snapshot, "lotr ").slots[0]
    assert Alternative(("lord", "of", "the", "rings")) in lotr.alternatives
    quoted = plan(snapshot, '"spiderman" ').slots[0]
    assert ((("spiderman",),), False) == (
        tuple(a.tokens for a in quoted.alternatives),
        quoted.typos,
    )


def test_no_typo_search_past_the_length_cap(snapshot: CatalogSnapshot) -> None:
    """A word of 32 letters may have typos; one of 33 may not (bounded typo search)."""
    at_cap = "a" * MAX_TYPO_WORD_LENGTH
    assert plan(snapshot, at_cap + " ").slots[0].typos
    assert not plan(snapshot, at_cap + "a ").slots[0].typos


def test_elided_articles_match_joined(snapshot: CatalogSnapshot) -> None:
    """ "avventura" may be "lavventura" (L'Avventura), "amelie" "damelie"; "known"
    never "unknown": elision comes only before a vowel."""
    assert (
        Alternative(("lavventura",), respaced=True)
        in plan(snapshot, "avventura ").slots[0].alternatives
    )
    amelie = plan(snapshot, "amelie poulain ").slots[0]
    assert Alternative(("damelie",), respaced=True) in amelie.alternatives
    assert 1 == len(plan(snapshot, "known ").slots[0].alternatives)


def test_assess_ranks_a_title_into_its_tier(snapshot: CatalogSnapshot) -> None:
    """Exact title, every word, and a typo match fall into their tiers."""
    match = TextMatch(snapshot, plan(snapshot, "star wars "), FTS5)
    assert EXACT == match.assess(["star wars"]).tier
    assert EXACT == match.assess(["wars star"]).tier  # any order is still the exact title
    assert ALL_WORDS == match.assess(["wars of the star kings"]).tier
    typo = TextMatch(snapshot, plan(snapshot, "the barin "), FTS5)
    assessed = typo.assess(["the brain"], typo_match=True)
    assert (WITH_TYPOS, 1) == (assessed.tier, assessed.typos)
    assert frozenset({"the", "brain"}) == typo.matched_words("the brain", typo_match=True)


def test_expressions_quote_every_word(snapshot: CatalogSnapshot) -> None:
    """Index expressions quote words, so operators typed as words are only words."""
    match = TextMatch(snapshot, plan(snapshot, "star AND "), FTS5)
    assert '"and"' in match.plain and '"star"' in match.plain


def test_synonym_files_parse_one_way_and_multi_way() -> None:
    """ "a => b" maps a to b only; "a, b" maps each to the other."""
    assert {("a",): (("b",),)} == parse_synonyms("a => b\n")
    assert {("a",): (("b",),), ("b",): (("a",),)} == parse_synonyms("a, b\n")


def test_rule_files_are_not_stat_ed_by_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """current() never touches the file system; reload_if_changed() does (the poller)."""
    synonyms, stop_words = tmp_path / "s.txt", tmp_path / "w.txt"
    synonyms.write_text("a => b\n")
    stop_words.write_text("the\n")
    files = RuleFiles(str(synonyms), str(stop_words), poll_seconds=0.0)
    calls: list[str] = []
    real_stat = os.stat

    def counting_stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
        calls.append(str(path))
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "stat", counting_stat)
    for _ in range(3):
        files.current()
    assert [] == calls
    files.reload_if_changed()
    assert 2 == len(calls)


def test_highlights_map_normalized_words_back_to_the_title() -> None:
    """A joined apostrophe word and a typed prefix are highlighted in the displayed title."""
    assert [[0, 11]] == spans("Schindler's List", {"schindlers"})
    assert [[4, 7]] == spans("The Matrix", {"matrix"}, prefix="mat")
    assert [[0, 4], [6, 13]] == spans("Léon: Réalité", {"leon", "realite"})


def typed(snapshot: CatalogSnapshot, q: str):  # type: ignore[no-untyped-def]
    """The plan with the snapshot's typo index, as the engine makes it."""
    return plan_query(parse_search([("q", q)]), RULES, snapshot.vocabulary, snapshot.typos)


def test_a_sequel_number_joins_the_first_word() -> None:
    """ "x men 2" (or "x men ii") may be "x2" when a title has that word; the words
    typed still match anywhere, the numeral as digits or roman. Without "x2" in
    the catalog, or with no word between ("x 2" is a joined pair), no such slot."""
    with_x2 = snapshot_of(["x men", "x2", "f x2"])
    slot = typed(with_x2, "x men 2 ").slots[0]
    assert ("x", "men", "2") == slot.words
    assert (
        Alternative(("x", "men", "2"), adjacent=False),
        Alternative(("x", "men", "ii"), adjacent=False),
        Alternative(("x2",), respaced=True),
    ) == slot.alternatives
    assert Alternative(("x2",), respaced=True) in typed(with_x2, "x men ii ").slots[0].alternatives
    assert [("x",), ("men",), ("2",)] == [
        s.words for s in typed(snapshot_of(["x men"]), "x men 2 ").slots
    ]
    assert ("x", "2") == typed(with_x2, "x 2 ").slots[0].words  # the joined pair's slot
    the2 = snapshot_of(["the2", "the end"])  # a stop word starts no sequel
    assert [("the",), ("end",), ("2",)] == [s.words for s in typed(the2, "the end 2 ").slots]
    match = TextMatch(with_x2, typed(with_x2, "x men 2 "), FTS5)
    assert EXACT == match.assess(["x2"]).tier


def test_a_letter_dropped_near_the_end_of_a_word_being_typed() -> None:
    """ "gladiatr", typed last, may be "gladiator" (3 titles) rather than the start of
    "gladiatrici" (1): ranked as that word, its typo counted. Not once the word is
    finished (a space after it), not for a letter dropped early ("gldiator"), and
    not when the letters typed complete to as many titles."""
    titles = ["gladiator", "the gladiator", "gladiator cop", "le gladiatrici"]
    catalog = snapshot_of(titles)
    corrected = Alternative(("gladiator",), corrected=True)
    assert corrected in typed(catalog, "gladiatr").slots[0].alternatives
    assert corrected not in typed(catalog, "gladiatr ").slots[0].alternatives
    assert corrected not in typed(catalog, "gldiator").slots[0].alternatives
    even = snapshot_of([*titles, "gladiatrix", "la gladiatrice"])
    assert corrected not in typed(even, "gladiatr").slots[0].alternatives
    match = TextMatch(catalog, typed(catalog, "gladiatr"), FTS5)
    exact, prefix = match.assess(["gladiator"]), match.assess(["le gladiatrici"])
    assert (EXACT, 1) == (exact.tier, exact.typos)
    assert exact.sort_key < prefix.sort_key


def test_a_broad_search_ranks_titles_with_the_stop_words_first(snapshot: CatalogSnapshot) -> None:
    """With an optional stop word, titles holding every slot (``strict``) are a tier
    of their own before those holding only the required words, as ``sort_key``
    ranks a small set ("la story": L.A. Story before Toy Story)."""
    match = TextMatch(snapshot, plan(snapshot, "the matrix "), FTS5)
    assert match.strict is not None and match.strict == match.preferred[-1]
    assert match.plain not in match.preferred
    assert TextMatch(snapshot, plan(snapshot, "star wars "), FTS5).strict is None


def test_an_assessment_carries_its_sort_key() -> None:
    """The key is made with the assessment: (absent, missing, tier, respaced, typos,
    within), within being minus the word order for exact titles, whether a typo match
    has words beyond the query's, and 0 in the other tiers."""
    from reelsearch.search.assessment import Assessment

    assert (0, 1, EXACT, 0, 0, -2) == Assessment(EXACT, 0, 1, 2, 0, 0).sort_key
    assert (0, 0, WITH_TYPOS, 1, 1, 1) == Assessment(WITH_TYPOS, 0, 0, 0, 1, 2, 1, 3).sort_key
    assert (0, 0, WITH_TYPOS, 0, 1, 0) == Assessment(WITH_TYPOS, 0, 0, 0, 1, 0, 0, 0).sort_key
    assert (2, 0, ALL_WORDS, 0, 0, 0) == Assessment(ALL_WORDS, 2, 0, 3, 0, 1, 0, 4).sort_key
