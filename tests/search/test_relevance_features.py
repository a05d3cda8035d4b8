"""Issue 3's relevance features, each against a real catalog on both backends.

The sample (ggplot2movies) is the real catalog for split and joined words,
operators, synonyms, stop words, numerals, years and highlights; the small
IMDb-format catalog has alternate titles (akas).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from reelsearch.config import Settings
from reelsearch.search.backends import open_blocking_engine
from reelsearch.search.engine import BlockingSearchEngine, SearchResult
from reelsearch.search.query import parse_search


def search(engine: BlockingSearchEngine, q: str, **params: str) -> SearchResult:
    return engine.search(parse_search([("q", q), *params.items()]))


def titles(engine: BlockingSearchEngine, q: str, limit: int = 10) -> list[str]:
    return [hit["title"] for hit in search(engine, q, limit=str(limit)).hits]


def top(engine: BlockingSearchEngine, q: str) -> tuple[str, int | None]:
    hit = search(engine, q).hits[0]
    return hit["title"], hit["year"]


# -- split and joined words ---------------------------------------------------------


def test_joined_word_finds_the_hyphenated_title(sample_engine: BlockingSearchEngine) -> None:
    found = titles(sample_engine, "spiderman", 3)
    assert "Spider-Man" in found and "Spiderman" in found


def test_split_words_find_the_joined_title(sample_engine: BlockingSearchEngine) -> None:
    assert top(sample_engine, "bat man")[0] == "Batman"
    assert "Spiderman" in titles(sample_engine, "spider man", 3)


def test_one_letter_split(sample_engine: BlockingSearchEngine) -> None:
    assert top(sample_engine, "xmen")[0] == "X-Men"
    assert top(sample_engine, "x men")[0] == "X-Men"


def test_typed_word_goes_before_its_split(sample_engine: BlockingSearchEngine) -> None:
    """Both are exact titles; the one spelled as typed ranks first."""
    assert titles(sample_engine, "shurayukihime", 2) == ["Shurayukihime", "Shura Yukihime"]
    explain = search(sample_engine, "shurayukihime", explain="true").hits[1]["explain"]
    assert explain["exactness"]["split_or_joined_words"] == 1


def test_split_halves_are_no_phrase_match(sample_engine: BlockingSearchEngine) -> None:
    """ "strangelove" in The Strange Love of Martha Ivers is one word split, not
    two words side by side: the title holding the word as typed goes first."""
    found = titles(sample_engine, "strangelove", 5)
    assert found[0].startswith("Dr. Strangelove")
    assert "The Strange Love of Martha Ivers" in found


def test_common_words_and_prefixes_are_not_split(sample_engine: BlockingSearchEngine) -> None:
    """ "inter" is the start of International, not "in ter..." (Experiment in Terror)."""
    assert "Experiment in Terror" not in titles(sample_engine, "inter", 50)
    assert "Reflections in a Golden Eye" not in titles(sample_engine, "hea", 50)


def test_two_typed_words_still_match_apart(sample_engine: BlockingSearchEngine) -> None:
    """A pair the catalog also writes joined ("confess" + "i..." -> "confessions")
    still matches the two words anywhere: I Confess is the exact title."""
    assert top(sample_engine, "confess i")[0] == "I Confess"


def test_initials_only_where_a_title_spells_them(sample_engine: BlockingSearchEngine) -> None:
    assert top(sample_engine, "swat")[0] == "S.W.A.T."
    assert top(sample_engine, "gi jane")[0] == "G.I. Jane"
    assert "Escape from L.A." in titles(sample_engine, "escape from la", 3)


def test_apostrophes_and_ampersands(sample_engine: BlockingSearchEngine) -> None:
    assert top(sample_engine, "schindlers list")[0] == "Schindler's List"
    assert titles(sample_engine, "tom & jerry") == titles(sample_engine, "tom and jerry")


# -- operators ------------------------------------------------------------------------


def test_quoted_phrase_has_no_typos(sample_engine: BlockingSearchEngine) -> None:
    assert top(sample_engine, "the matirx")[0] == "The Matrix"
    assert search(sample_engine, '"the matirx"').total == 0


def test_quoted_phrase_keeps_its_words_together(sample_engine: BlockingSearchEngine) -> None:
    for hit in search(sample_engine, '"lord of the rings"', limit="50").hits:
        assert "lord of the rings" in hit["title"].lower().replace(":", "")


def test_excluded_word_leaves_titles_out(sample_engine: BlockingSearchEngine) -> None:
    everything = titles(sample_engine, "matrix", 50)
    assert "The Matrix Reloaded" in everything
    without = titles(sample_engine, "matrix -reloaded", 50)
    assert "The Matrix Reloaded" not in without
    assert set(without) == {t for t in everything if "reloaded" not in t.lower()}


def test_excluded_phrase(sample_engine: BlockingSearchEngine) -> None:
    found = titles(sample_engine, 'star wars -"the empire"', 50)
    assert "Star Wars" in found
    assert not [t for t in found if "The Empire" in t]


def test_hyphen_inside_a_word_is_not_an_exclusion(sample_engine: BlockingSearchEngine) -> None:
    assert top(sample_engine, "spider-man")[0] == "Spider-Man"


def test_excluding_a_required_word_matches_nothing(sample_engine: BlockingSearchEngine) -> None:
    assert search(sample_engine, "matrix -matrix").total == 0


# -- alternate titles -----------------------------------------------------------------


def test_alternate_title_finds_the_movie_once(small_engine: BlockingSearchEngine) -> None:
    result = search(small_engine, "fabuleux destin")
    assert [hit["title"] for hit in result.hits] == ["Amélie"]
    assert result.hits[0]["matched_title"] == "Le fabuleux destin d'Amélie Poulain"
    assert result.hits[0]["highlights"]["matched_title"] == [[3, 11], [12, 18]]


def test_primary_title_match_reports_no_matched_title(small_engine: BlockingSearchEngine) -> None:
    result = search(small_engine, "amelie")
    assert [hit["title"] for hit in result.hits].count("Amélie") == 1
    hit = next(h for h in result.hits if h["title"] == "Amélie")
    assert hit["matched_title"] is None


def test_phrase_does_not_run_across_titles(small_engine: BlockingSearchEngine) -> None:
    # "Amélie" followed by its aka "Le fabuleux..." must not make "amelie le" a phrase.
    assert search(small_engine, '"amelie le"').total == 0


# -- synonyms and stop words ---------------------------------------------------------


def test_synonym_expands_an_abbreviation(sample_engine: BlockingSearchEngine) -> None:
    found = titles(sample_engine, "lotr", 4)
    assert all(t.startswith("The Lord of the Rings") for t in found), found


def test_one_way_synonym_does_not_go_back(sample_engine: BlockingSearchEngine) -> None:
    # "lotr => lord of the rings": typing the long form does not find "Lotrando".
    assert not [t for t in titles(sample_engine, "lord of the rings", 50) if "Lotr" in t]


def test_stop_word_is_optional_among_other_words(sample_engine: BlockingSearchEngine) -> None:
    assert top(sample_engine, "the terminator 2") == ("Terminator 2: Judgment Day", 1991)


def test_a_typo_with_every_stop_word_beats_a_title_without_them(
    sample_engine: BlockingSearchEngine,
) -> None:
    """ "la pete": 56 titles hold "pete..." but none "la" too, so typo matches
    join, and La Peste (one typo, "la" included) ranks before Peter Pan."""
    assert top(sample_engine, "la pete")[0] == "La Peste"
    assert top(sample_engine, "the barin")[0] == "The Brain"


def test_only_stop_words_are_searched_as_typed(sample_engine: BlockingSearchEngine) -> None:
    result = search(sample_engine, "the the ", limit="20")
    assert result.total > 0
    for hit in result.hits:
        assert "the" in hit["title"].lower().split()


@pytest.fixture
def rule_files(tmp_path: Path) -> tuple[Path, Path]:
    synonyms, stop_words = tmp_path / "synonyms.txt", tmp_path / "stopwords.txt"
    synonyms.write_text("# none yet\n")
    stop_words.write_text("# none yet\n")
    return synonyms, stop_words


@pytest.fixture
def engine_with_rules(
    sample_backend_settings: Settings, rule_files: tuple[Path, Path]
) -> Iterator[BlockingSearchEngine]:
    synonyms, stop_words = rule_files
    settings = replace(
        sample_backend_settings,
        synonyms_path=str(synonyms),
        stopwords_path=str(stop_words),
        catalog_poll_seconds=0.05,
    )
    engine = open_blocking_engine(settings)
    yield engine
    engine.close()


def _rewrite(path: Path, text: str, engine: BlockingSearchEngine) -> None:
    """Write ``text`` so the change is seen even on a coarse-mtime filesystem, then let
    the engine's poll (what the server's catalog poller calls) pick it up."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    while path.stat().st_mtime_ns == before:
        time.sleep(0.01)
        path.write_text(text)
    engine.refresh_if_changed()


def test_synonyms_reload_without_a_restart(
    engine_with_rules: BlockingSearchEngine, rule_files: tuple[Path, Path]
) -> None:
    assert search(engine_with_rules, "zzneo zzfilm ").total == 0
    _rewrite(rule_files[0], "zzneo zzfilm => the matrix\n", engine_with_rules)
    assert top(engine_with_rules, "zzneo zzfilm ")[0] == "The Matrix"


def test_multi_way_synonyms(
    engine_with_rules: BlockingSearchEngine, rule_files: tuple[Path, Path]
) -> None:
    _rewrite(rule_files[0], "neo movie, the matrix\n", engine_with_rules)
    assert top(engine_with_rules, "neo movie ")[0] == "The Matrix"
    _rewrite(rule_files[0], "zzneo, the matrix\n", engine_with_rules)
    assert top(engine_with_rules, "zzneo ")[0] == "The Matrix"


def test_stop_words_reload_without_a_restart(
    engine_with_rules: BlockingSearchEngine, rule_files: tuple[Path, Path]
) -> None:
    # With no stop words, "the" is required and Terminator 2 (no "the") is not found first.
    assert top(engine_with_rules, "the terminator 2")[0] != "Terminator 2: Judgment Day"
    _rewrite(rule_files[1], "the\n", engine_with_rules)
    assert top(engine_with_rules, "the terminator 2")[0] == "Terminator 2: Judgment Day"


def test_a_broken_rules_file_keeps_the_previous_rules(
    engine_with_rules: BlockingSearchEngine, rule_files: tuple[Path, Path]
) -> None:
    _rewrite(rule_files[0], "neo movie => the matrix\n", engine_with_rules)
    assert top(engine_with_rules, "neo movie ")[0] == "The Matrix"
    _rewrite(rule_files[0], "lonely\n", engine_with_rules)  # a list of one is an error
    assert top(engine_with_rules, "neo movie ")[0] == "The Matrix"


# -- numbers and years ------------------------------------------------------------------


def test_arabic_numeral_finds_the_roman_sequel(sample_engine: BlockingSearchEngine) -> None:
    assert top(sample_engine, "rocky 2") == ("Rocky II", 1979)
    assert top(sample_engine, "godfather part 2")[0] == "The Godfather: Part II"


def test_roman_numeral_finds_the_arabic_sequel(sample_engine: BlockingSearchEngine) -> None:
    assert top(sample_engine, "terminator ii")[0] == "Terminator 2: Judgment Day"


def test_year_matches_the_year_field(sample_engine: BlockingSearchEngine) -> None:
    assert top(sample_engine, "alien 1979") == ("Alien", 1979)
    assert top(sample_engine, "king kong 1933") == ("King Kong", 1933)
    assert top(sample_engine, "king kong 1976") == ("King Kong", 1976)


def test_year_in_the_title_still_matches(sample_engine: BlockingSearchEngine) -> None:
    assert top(sample_engine, "2001 a space odyssey")[0] == "2001: A Space Odyssey"
    assert top(sample_engine, "1984")[0] == "1984"


def test_a_year_no_movie_has_is_read_as_a_word(sample_engine: BlockingSearchEngine) -> None:
    # No "alien" from 1901: the year is given up and the search goes on without it.
    assert top(sample_engine, "alien 1901")[0] == "Alien"


# -- highlights and explain --------------------------------------------------------------


def test_highlights_mark_the_typed_prefix(sample_engine: BlockingSearchEngine) -> None:
    hit = search(sample_engine, "the matr").hits[0]
    assert hit["title"] == "The Matrix"
    assert hit["highlights"] == {"title": [[0, 3], [4, 8]]}


def test_highlights_of_a_typo(sample_engine: BlockingSearchEngine) -> None:
    hit = search(sample_engine, "shawshenk").hits[0]
    assert hit["title"] == "The Shawshank Redemption"
    assert hit["highlights"] == {"title": [[4, 13]]}


def test_highlights_only_when_asked(sample_engine: BlockingSearchEngine) -> None:
    hit = search(sample_engine, "matrix", fields="id,title").hits[0]
    assert set(hit) == {"id", "title"}


def test_explain_gives_the_parts_of_the_rank(sample_engine: BlockingSearchEngine) -> None:
    hits = search(sample_engine, "the matrix", explain="true").hits
    first = hits[0]["explain"]
    assert first["text_match"]["tier_name"] == "exact title"
    assert first["typos"] == 0
    assert first["exactness"]["exact_title"] is True
    assert first["popularity"]["votes"] == hits[0]["votes"]
    keys = [hit["explain"]["rank_key"] for hit in hits]
    assert keys == sorted(keys), "the hits are in the order their rank keys say"


def test_explain_counts_typos(sample_engine: BlockingSearchEngine) -> None:
    hit = search(sample_engine, "shawshenk redemption", explain="true").hits[0]
    assert hit["title"] == "The Shawshank Redemption"
    assert hit["explain"]["typos"] == 1
    assert hit["explain"]["text_match"]["tier_name"] == "every word, some with typos"


def test_an_elided_article_is_found_joined_and_apart(sample_engine: BlockingSearchEngine) -> None:
    """ "avventura" finds L'Avventura first (normalized "lavventura"); "l avventura" too."""
    assert top(sample_engine, "avventura")[0] == "L'Avventura"
    assert top(sample_engine, "l avventura ")[0] == "L'Avventura"
    assert top(sample_engine, "eclisse ")[0] == "L'Eclisse"


# -- what a person expects (issue 10) --------------------------------------------------


def test_a_stop_word_spelled_as_initials_ranks_first(sample_engine: BlockingSearchEngine) -> None:
    """ "la" is a stop word, but L.A. Story spells it as initials: among the 263
    titles with "story" (ranked tier by tier), the one that holds every typed
    word goes before the more popular Toy Story, which lacks "la"."""
    assert top(sample_engine, "la story") == ("L.A. Story", 1991)
    found = search(sample_engine, "la story", explain="true")
    assert found.total == 263
    assert found.hits[0]["explain"]["exactness"]["missing_stop_words"] == 0
    assert found.hits[1]["title"] == "Toy Story"


def test_a_sequel_numbered_after_its_first_word(sample_engine: BlockingSearchEngine) -> None:
    """ "x men 2" finds X2 (the catalog writes the sequel as "X2"), digits or roman;
    "x men" alone still finds X-Men."""
    assert top(sample_engine, "x men 2") == ("X2", 2003)
    assert top(sample_engine, "x men ii ") == ("X2", 2003)
    assert top(sample_engine, "x men") == ("X-Men", 2000)


def test_a_letter_dropped_near_the_end_of_the_last_word(
    sample_engine: BlockingSearchEngine,
) -> None:
    """ "gladiatr" is the start of Le Gladiatrici (one title), but five titles hold
    "gladiator", a letter dropped near its end: Gladiator (2000) goes first, its
    typo counted; "gladiat", a plain prefix, keeps its completions' order."""
    assert top(sample_engine, "gladiatr") == ("Gladiator", 2000)
    hit = search(sample_engine, "gladiatr", explain="true").hits[0]
    assert hit["explain"]["typos"] == 1
    assert top(sample_engine, "gladiat") == ("Gladiator", 2000)
    assert "Le Gladiatrici" in titles(sample_engine, "gladiatr", 5)
