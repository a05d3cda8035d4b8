"""What a cached search answer is tagged with, so a write can find it (decision 0015).

``search_tags`` runs once per computed answer (a miss), never on a hit. The
tags say what a title must hold for the answer to count it, in the words the
engine matches (``search/plan.py``):

- ``w:<word>`` each word searched; ``p:<word>`` the last one while it is being
  typed (a prefix): matched as the engine matches typed words (typos, splits);
- ``x:<word>`` what the planner may match instead, as it is: the rules'
  synonyms of every run of words, the numeral twin ("2"/"ii") and each two
  neighbours joined ("spider man" -> "spiderman"; ``y:`` if typed last);
- ``m:<id>`` each movie on the page; ``browse`` when no words were searched;
- ``v:<version>`` the catalog version the answer was computed on.

A stop word is left out when a word that is always required comes before it:
then every title the answer counts holds that word, so the stop word alone
never brings a title in ("the matrix": a new "The Room" changes nothing).
Before any such word it is kept only when the engine dropped trailing words
that matched nothing ("the xyzzy" searches "the"): while the whole query
matches, no cut happens, and a write that stops it matching changes titles
holding the required word, which is tagged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reelsearch.cache.invalidation import BROWSE, EXACT, EXACT_PREFIX, MOVIE, PREFIX, WORD
from reelsearch.search.plan import FIRST_FILM_YEAR, LAST_PLAUSIBLE_YEAR, NUMERALS, SEQUEL_MARKERS
from reelsearch.search.query import SearchQuery
from reelsearch.search.rulebook import Rules


def search_tags(
    query: SearchQuery,
    hits: Iterable[Mapping[str, Any]],
    catalog_version: int,
    rules: Rules | None,
    *,
    all_words: bool | None = None,
) -> tuple[str, ...]:
    """The tags of the answer to ``query`` (canonical) whose page holds ``hits``;
    ``all_words``: the engine searched every word (dropped none that matched nothing)."""
    movies = sorted({f"{MOVIE}{hit['id']}" for hit in hits if "id" in hit})
    version = f"v:{catalog_version}"
    if not query.words:
        return (version, BROWSE, *movies)
    if rules is None:  # synonyms unknown: only "drop on any write" is safe
        return (version, BROWSE, *movies)
    return (version, *sorted(word_tags_of(query, rules, all_words=all_words is True)), *movies)


class PageTags(tuple[Any, ...]):
    """A computed answer's tags, made when first called: ``(words, last_is_prefix,
    quoted, catalog_version, rules, all_words, *movie_ids)``.

    A tuple subclass so that one object, built in C, holds everything (a ``partial``
    was two: itself and its arguments' tuple), and one untrack takes it out of the
    collector's view (http/search_cache.py, ``tag_source``).
    """

    __slots__ = ()

    def __call__(self) -> tuple[str, ...]:
        words, last_is_prefix, quoted, catalog_version, rules, all_words = self[:6]
        # The tags read only these three fields of the query.
        query = SearchQuery(words=words, last_is_prefix=last_is_prefix, quoted=quoted)
        return search_tags(query, [{"id": movie} for movie in self[6:]], catalog_version,
                           rules, all_words=all_words)  # fmt: skip


def word_tags_of(query: SearchQuery, rules: Rules, *, all_words: bool = False) -> set[str]:
    words = query.words
    last = len(words) - 1
    typing = query.last_is_prefix
    tags: set[str] = set()
    runs = _synonym_runs(words, rules)
    kept = _required_positions(query, rules, runs, all_words=all_words)
    for i, word in enumerate(words):
        if i in kept:
            tags.add((PREFIX if i == last and typing else WORD) + word)
        numeral = NUMERALS.get(word)
        if numeral is not None:
            tags.add(EXACT + numeral)
        if i < last:
            joined = word + words[i + 1]
            tags.add((EXACT_PREFIX if i + 1 == last and typing else EXACT) + joined)
    for _, _, alternatives in runs:
        for phrase in alternatives:
            tags.update(EXACT + token for token in phrase)
    return tags


SynonymRun = tuple[int, int, Sequence[tuple[str, ...]]]


def _synonym_runs(words: tuple[str, ...], rules: Rules) -> list[SynonymRun]:
    """Each run ``words[start:stop]`` the rules give alternatives for, with them (a
    superset of the planner's): read once, for the tags and for the protected words."""
    longest = rules.longest_synonym
    runs: list[SynonymRun] = []
    for start in range(len(words)):
        for stop in range(start + 1, min(len(words), start + longest) + 1):
            alternatives = rules.alternatives(tuple(words[start:stop]))
            if alternatives:
                runs.append((start, stop, alternatives))
    return runs


def _required_positions(
    query: SearchQuery, rules: Rules, runs: list[SynonymRun], *, all_words: bool
) -> set[int]:
    """Positions of words to tag: all but stop words after a word that is always required
    (anywhere, when the engine searched every word: it cuts none while the whole matches)."""
    words = query.words
    stop_words = rules.stop_words
    protected = {i for start, end in query.quoted for i in range(start, end)}
    for start, stop, _ in runs:
        protected.update(range(start, stop))
    kept: set[int] = set()
    anchored = all_words and any(_always_required(word, stop_words) for word in words)
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
