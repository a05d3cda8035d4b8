"""What a cached search answer is tagged with, so a write can find it (decision 0015).

``search_tags`` runs once per computed answer (a miss), never on a hit. The
tags say what a title must hold for the answer to count it, in the words the
engine matches (``search/plan.py``):

- ``w:<word>`` each word searched; with the rules' synonyms of every run of
  words, the numeral twin ("2"/"ii") and each two neighbours joined
  ("spider man" -> "spiderman"), which the planner may use instead;
- ``p:<word>`` the last word (or last pair joined) while it is being typed;
- ``m:<id>`` each movie on the page; ``browse`` when no words were searched;
- ``v:<version>`` the catalog version the answer was computed on.

A stop word is left out when a word that is always required comes before it:
then every title the answer counts holds that word, so the stop word alone
never brings a title in ("the matrix": a new "The Room" changes nothing).
Before any such word it is kept, since the engine may cut the query down to
its first words, stop words included ("the xyzzy" searches "the").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reelsearch.cache.invalidation import BROWSE, MOVIE, PREFIX, WORD
from reelsearch.search.plan import FIRST_FILM_YEAR, LAST_PLAUSIBLE_YEAR, NUMERALS, SEQUEL_MARKERS
from reelsearch.search.query import SearchQuery
from reelsearch.search.rulebook import Rules


def search_tags(
    query: SearchQuery,
    hits: Iterable[Mapping[str, Any]],
    catalog_version: int,
    rules: Rules | None,
) -> tuple[str, ...]:
    """The tags of the answer to ``query`` (canonical) whose page holds ``hits``."""
    movies = sorted({f"{MOVIE}{hit['id']}" for hit in hits if "id" in hit})
    version = f"v:{catalog_version}"
    if not query.words:
        return (version, BROWSE, *movies)
    if rules is None:  # synonyms unknown: only "drop on any write" is safe
        return (version, BROWSE, *movies)
    return (version, *sorted(word_tags_of(query, rules)), *movies)


def word_tags_of(query: SearchQuery, rules: Rules) -> set[str]:
    words = query.words
    last = len(words) - 1
    typing = query.last_is_prefix
    tags: set[str] = set()
    kept = _required_positions(query, rules)
    for i, word in enumerate(words):
        if i in kept:
            tags.add((PREFIX if i == last and typing else WORD) + word)
        numeral = NUMERALS.get(word)
        if numeral is not None:
            tags.add(WORD + numeral)
        if i < last:
            tags.add((PREFIX if i + 1 == last and typing else WORD) + word + words[i + 1])
    for phrase in _synonyms(words, rules):
        tags.update(WORD + token for token in phrase)
    return tags


def _synonyms(words: tuple[str, ...], rules: Rules) -> Iterable[tuple[str, ...]]:
    """Every alternative the rules give any run of the words (a superset of the planner's)."""
    longest = rules.longest_synonym
    for start in range(len(words)):
        for stop in range(start + 1, min(len(words), start + longest) + 1):
            yield from rules.alternatives(tuple(words[start:stop]))


def _required_positions(query: SearchQuery, rules: Rules) -> set[int]:
    """Positions of words to tag: all but stop words after a word that is always required."""
    words = query.words
    stop_words = rules.stop_words
    protected = {i for start, end in query.quoted for i in range(start, end)}
    longest = rules.longest_synonym
    for start in range(len(words)):
        for stop in range(start + 1, min(len(words), start + longest) + 1):
            if rules.alternatives(tuple(words[start:stop])):
                protected.update(range(start, stop))
    kept: set[int] = set()
    anchored = False
    for i, word in enumerate(words):
        if word not in stop_words or i in protected or not anchored:
            kept.add(i)
        anchored = anchored or _always_required(word, stop_words)
    return kept


def _always_required(word: str, stop_words: frozenset[str]) -> bool:
    """A word every matching title holds some form of: not a stop word, a sequel
    marker ("part" before a numeral is optional) or a year (matched as the year)."""
    if word in stop_words or word in SEQUEL_MARKERS:
        return False
    return not (
        len(word) == 4 and word.isdigit() and FIRST_FILM_YEAR <= int(word) <= LAST_PLAUSIBLE_YEAR
    )
