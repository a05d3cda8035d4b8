"""How many titles a PostgreSQL search's words may match, from the vocabulary's counts.

The one statement of a page (``postgres_page.py``) hides its tsquery from the
planner and says itself how to read each match: walking the popularity index
or through GIN. These estimates decide, from the exact title counts of the
snapshot's vocabulary and the whole-catalog facets (docs/decisions/0018).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Protocol, TypeVar

from reelsearch.search.matching import TextMatch
from reelsearch.search.plan import Alternative, QueryPlan
from reelsearch.search.query import SearchQuery
from reelsearch.search.snapshot import CatalogSnapshot
from reelsearch.search.syntax import TSQUERY
from reelsearch.search.vocabulary import INDEXED_PREFIX_LENGTH, Vocabulary

# Reading a match through GIN costs about this many times a title read walking the
# popularity index (a heap fetch and recheck against a test of an in-page row).
GIN_ROW_COST = 8
# The share of titles a filter without catalog-wide counts is taken to keep.
UNKNOWN_FILTER_SHARE = 0.5
# GIN reads one slot alone (each of its titles then tested against the whole match)
# when another slot has this many times its titles, and it has at most DRIVER_TITLES:
# a title tested costs a heap fetch, a word's title in GIN a few bytes of a list.
DRIVER_RATIO = 32
DRIVER_TITLES = 20_000
# Counts a TitleCounts keeps before it starts over: a few MB at most.
REMEMBERED_COUNTS = 50_000
K = TypeVar("K", bound=Hashable)


class Counts(Protocol):
    """The vocabulary's title counts the estimates read."""

    def doc_count(self, word: str) -> int: ...

    def titles_with(self, word: str, *, prefix: bool, up_to: int) -> int: ...

    def most_titles_with_prefix(self, prefix: str) -> int: ...


class TitleCounts:
    """A vocabulary's title counts, each worked out once per word.

    The estimates ask for a prefix's titles up to a quarter of the catalog:
    ``Vocabulary.titles_with`` then adds up every word the prefix begins, one
    by one (thousands for "a"), and searches share their words. Remembered
    here, the estimates cost about a tenth of what they did (0022). One per
    snapshot: a new catalog brings a new vocabulary.
    """

    __slots__ = ("vocabulary", "_docs", "_titles", "_most")

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        self._docs: dict[str, int] = {}
        self._titles: dict[tuple[str, bool, int], int] = {}
        self._most: dict[str, int] = {}

    def doc_count(self, word: str) -> int:
        return _remembered(self._docs, word, lambda: self.vocabulary.doc_count(word))

    def titles_with(self, word: str, *, prefix: bool, up_to: int) -> int:
        if not prefix:
            return self.doc_count(word)
        return _remembered(
            self._titles,
            (word, prefix, up_to),
            lambda: self.vocabulary.titles_with(word, prefix=True, up_to=up_to),
        )

    def most_titles_with_prefix(self, prefix: str) -> int:
        return _remembered(
            self._most, prefix, lambda: self.vocabulary.most_titles_with_prefix(prefix)
        )


def _remembered(memo: dict[K, int], key: K, count: Callable[[], int]) -> int:
    """``memo[key]``, counted (``count()``) the first time; the memo is emptied when it
    holds REMEMBERED_COUNTS keys (a bound, not an order: counts are cheap to redo)."""
    found = memo.get(key)
    if found is None:
        if len(memo) >= REMEMBERED_COUNTS:
            memo.clear()
        found = memo[key] = count()
    return found


def alternative_titles(alternative: Alternative, vocabulary: Counts, up_to: int) -> int:
    """At most how many titles hold an alternative of a slot: its rarest word's count
    (the last word as a prefix when the alternative is one), counted to ``up_to``."""
    tokens = alternative.tokens
    last = len(tokens) - 1
    return min(
        vocabulary.titles_with(token, prefix=alternative.prefix and i == last, up_to=up_to)
        for i, token in enumerate(tokens)
    )


def alternative_estimate(
    alternative: Alternative, vocabulary: Counts, movie_count: int, up_to: int
) -> float:
    """About how many titles hold an alternative of a slot: its words' counts (the last
    as a prefix when the alternative is one), as if they were independent.

    "#2.6" is the alternative '2' & '6':*: 23,153 and 30,000 titles at 1 M, but about
    700 hold both. Its rarest word's count (``alternative_titles``, an upper bound) made
    a walk of the rank index look 30 times shorter than it was (docs/decisions/0032).
    """
    tokens = alternative.tokens
    last = len(tokens) - 1
    estimate = float(movie_count)
    for i, token in enumerate(tokens):
        titles = vocabulary.titles_with(token, prefix=alternative.prefix and i == last, up_to=up_to)
        estimate *= min(titles, movie_count) / movie_count
    return estimate


def matches_at_most(plan: QueryPlan, vocabulary: Counts, up_to: int) -> int:
    """An upper bound of the titles holding every required word, counted to ``up_to``.

    From the vocabulary's exact title counts: a slot matches at most the sum
    of its alternatives, an alternative at most its rarest word, and all the
    slots at most the rarest slot. Exact for one word; for several, it says
    "certainly few" (then the probe alone reads every match) or "maybe many".
    """
    bound = up_to
    for slot in plan.required:
        total = 0
        for alternative in slot.alternatives:
            total += alternative_titles(alternative, vocabulary, up_to)
            if total >= bound:
                break
        bound = min(bound, total)
    return bound


def matches_at_least(match: TextMatch, vocabulary: Counts, *, typos: bool) -> int:
    """A lower bound of the titles holding every required word (or, with ``typos``, a
    typo candidate of it), without filters.

    One required slot (stop words are optional, so "of i" has one): a title
    holding any of its one-word alternatives (or typo candidates) matches, so
    the most used one's exact title count is a floor; a prefix alternative
    matches every word it begins, so its most used such word's count is
    ("dea": "dead"; before 0035 only the prefix as a word, and "dea" read 1,001
    matches at 1 M titles only to count them). Several slots, or words excluded:
    0, nothing is certain.
    """
    plan = match.plan
    if plan.excluded or len(plan.required) != 1:
        return 0
    slot = plan.required[0]
    floors = [
        vocabulary.most_titles_with_prefix(a.tokens[0])
        if a.prefix
        else vocabulary.doc_count(a.tokens[0])
        for a in slot.alternatives
        if len(a.tokens) == 1
    ]
    if typos and slot.typos:
        floors += map(vocabulary.doc_count, match.typos.candidates(slot.words[0]))
    return max(floors, default=0)


def gin_driver(
    match: TextMatch, vocabulary: Counts, movie_count: int, *, typos: bool
) -> str | None:
    """The part of a match GIN should read alone, or None to read it whole.

    GIN reads every word of a tsquery, and a prefix of up to four letters
    ('n':*, 'to':*) by merging the titles of every word it begins. When one
    required slot costs GIN far less than another (``DRIVER_RATIO``), reading
    that slot alone and testing each of its titles against the whole match
    costs less (``postgres_reads.read_by``). A slot whose words include such a
    prefix is read as its other words ("cusi r": 'cusi', "conato" beside its
    respacing "cona to": 'conato' | 'cona'), a superset of its titles: so a
    one-slot match has a driver too (docs/decisions/0032).
    """
    required = match.plan.required
    if not required or movie_count == 0:
        return None
    up_to = max(movie_count // 4, 1)
    reads: list[int] = []  # what GIN reads for each slot as it is
    drivers: list[tuple[int, str | None]] = []  # its titles as a driver, and its text
    for slot in required:
        titles = sum(alternative_titles(a, vocabulary, up_to) for a in slot.alternatives)
        merged = sum(_prefix_merge(a, vocabulary, up_to) for a in slot.alternatives)
        candidates: tuple[str, ...] = ()
        if typos and slot.typos:
            candidates = match.typos.candidates(slot.words[0])
            titles += sum(map(vocabulary.doc_count, candidates))
        reads.append(titles + merged)
        if not merged:
            drivers.append((titles, None))
            continue
        reduced = _without_short_prefixes(slot.alternatives, vocabulary, up_to)
        if reduced is None:
            drivers.append((titles + merged, None))
            continue
        terms, count = reduced
        terms += [TSQUERY.quote(word) for word in candidates]
        count += sum(map(vocabulary.doc_count, candidates))
        drivers.append((count, "(" + TSQUERY.or_.join(terms) + ")"))
    rarest = min(range(len(drivers)), key=lambda i: drivers[i][0])
    titles, text = drivers[rarest]
    if titles > DRIVER_TITLES or max(reads) < DRIVER_RATIO * titles:
        return None
    if text is not None:
        return text
    if len(required) < 2:
        return None  # the slot is the whole match
    return match.slot_group(required[rarest], typos=typos)


def _prefix_merge(alternative: Alternative, vocabulary: Counts, up_to: int) -> int:
    """The titles GIN merges for an alternative's last word typed as a short prefix
    (the index's own prefix lookup, ``INDEXED_PREFIX_LENGTH``), else 0."""
    word = alternative.tokens[-1]
    if not alternative.prefix or len(word) > INDEXED_PREFIX_LENGTH:
        return 0
    return vocabulary.titles_with(word, prefix=True, up_to=up_to)


def _without_short_prefixes(
    alternatives: Sequence[Alternative], vocabulary: Counts, up_to: int
) -> tuple[list[str], int] | None:
    """Each alternative as its rarest word that is not a short prefix (a longer last
    word as a prefix: every completion begins with it), and their titles; None if an
    alternative is nothing but a short prefix."""
    terms: list[str] = []
    total = 0
    for alternative in alternatives:
        tokens, last = alternative.tokens, len(alternative.tokens) - 1
        options = []
        for i, token in enumerate(tokens):
            prefix = alternative.prefix and i == last
            if prefix and len(token) <= INDEXED_PREFIX_LENGTH:
                continue
            titles = vocabulary.titles_with(token, prefix=prefix, up_to=up_to)
            options.append((titles, i, token, prefix))
        if not options:
            return None
        titles, _, token, prefix = min(options)
        terms.append(TSQUERY.quote(token) + (TSQUERY.prefix if prefix else ""))
        total += titles
    return terms, total


def is_common(estimate: float, share: float, limit: int, movie_count: int) -> bool:
    """Whether walking the popularity index to ``limit`` matches is cheaper than
    reading every title GIN finds for the words.

    The walk reads about ``limit * N / (estimate * share)`` titles (the filters
    thin the matches out); GIN fetches about ``estimate`` titles and the
    filters test each (a filter does not shrink what GIN returns).
    """
    matches = max(estimate * share, 1e-9)
    return limit * movie_count / matches < GIN_ROW_COST * estimate


def estimated_matches(
    match: TextMatch, vocabulary: Counts, movie_count: int, *, typos: bool
) -> float:
    """About how many titles hold every required word (or, with ``typos``, a typo
    candidate of it): the vocabulary's counts, as if words were independent."""
    if movie_count == 0:
        return 0.0
    up_to = max(movie_count // 4, 1)
    estimate = float(movie_count)
    for slot in match.plan.required:
        titles = 0.0
        for alternative in slot.alternatives:
            titles += alternative_estimate(alternative, vocabulary, movie_count, up_to)
        if typos and slot.typos:
            titles += sum(map(vocabulary.doc_count, match.typos.candidates(slot.words[0])))
        estimate *= min(titles, movie_count) / movie_count
    return estimate


def filtered_share(snapshot: CatalogSnapshot, query: SearchQuery, *, year: int | None) -> float:
    """About which share of the catalog the query's filters keep (1.0: no filters).

    From the whole-catalog facets the snapshot holds: titles per decade for a
    year range (or a year typed among the words), per genre for genres; other
    filters count as keeping half. A walk of the popularity index reads about
    ``L / (matches share x filter share)`` titles, so a selective filter is
    what turns a common word into a rare match.
    """
    movies = snapshot.movie_count or 1
    share = 1.0
    low, high = query.year_from, query.year_to
    if year is not None:
        low = high = year
    if low is not None or high is not None:
        low, high = low if low is not None else -9999, high if high is not None else 9999
        in_range = 0.0
        for decade, count in snapshot.catalog_facets["decade"].items():
            start = int(decade)
            overlap = min(high, start + 9) - max(low, start) + 1
            in_range += count * max(0, min(overlap, 10)) / 10
        share *= in_range / movies
    if query.genres:
        counts = snapshot.catalog_facets["genres"]
        names = [name for _, name in (snapshot.genres.get(g.lower(), (0, g)) for g in query.genres)]
        per_genre = [counts.get(name, 0) / movies for name in names]
        share *= min(per_genre) if query.genres_mode == "all" else min(1.0, sum(per_genre))
    for value in (query.min_rating, query.min_votes, query.kind):
        if value is not None:
            share *= UNKNOWN_FILTER_SHARE
    return share
