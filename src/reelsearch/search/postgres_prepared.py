"""A relevance page's one statement, worked out once per query, catalog and rules version.

Before its one round trip, a PostgreSQL search works out what to send: the
filters, the plan and its match, the filters' share of the catalog, whether
each match walks the rank index or reads GIN, the first-words cuts the
bisection may try, and the statement's text and parameters
(``PageStatement.build``). None of it depends on what the server answers:
only on the query, the catalog snapshot (its vocabulary's counts, facets and
genres) and the relevance rules. Popular queries recur, so it is kept in an
LRU keyed by the query, as the planner keeps its plans (docs/decisions/0024);
a new snapshot or rules version starts it afresh. The statement's text is
kept once per distinct text (a few dozen shapes), so the entries share it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reelsearch.search.as_typed import answered_from_sets
from reelsearch.search.filters import Filters, build_filters, with_year
from reelsearch.search.held import hold_entry, hold_prepared_page, hold_query
from reelsearch.search.matching import TextMatch
from reelsearch.search.pages import PROBE_ROWS, TYPO_THRESHOLD
from reelsearch.search.plan import QueryPlan
from reelsearch.search.postgres_estimates import (
    TitleCounts,
    estimated_matches,
    filtered_share,
    gin_driver,
    is_common,
    matches_at_least,
    matches_at_most,
)
from reelsearch.search.postgres_page import PageStatement
from reelsearch.search.postgres_reads import Cut
from reelsearch.search.query import SearchQuery
from reelsearch.search.snapshot import CatalogSnapshot
from reelsearch.search.tiered import TieredSearch

# Prepared pages kept per worker: about 1-3 kB each (the texts are shared).
PREPARED_PAGES = 2048

# Up to this many words, the checks of every first-words cut the bisection may try
# ride along (at most 4 plans); a longer query's bisection asks the server.
MAX_CUT_WORDS = 6

# The count is taken as known past the cap when the vocabulary's floor is this many
# times the cap: single-movie writes between imports move a word's count by a few.
CAP_MARGIN = 2


@dataclass(frozen=True, slots=True)
class PageSql:
    """One statement for the page of a match: text, parameters, and what ``answers`` needs."""

    sql: str
    params: tuple[Any, ...]
    limit: int  # L: the matches ``p`` reads at most
    broad: bool
    beyond_cap: bool = False  # the vocabulary says the words match more than the count cap
    typos_beyond_cap: bool = False  # and with typos


@dataclass(frozen=True, slots=True)
class PreparedPage:
    """Everything a relevance page's first round trip needs, worked out before it."""

    match: TextMatch
    filters: Filters
    need: int  # offset + limit
    share: float  # the filters' share of the catalog
    tried: tuple[TextMatch, ...]  # the first-words cuts whose checks ride along
    cuts: tuple[Cut, ...]  # the same, with how each is read
    # None: the title postings answer the match sets in memory, and the page's rows
    # are one read by rank; nothing is sent first (0037).
    statement: PageSql | None


class PreparedPages:
    """An LRU of prepared pages for one snapshot and rules version."""

    __slots__ = ("_pages", "_rules", "_snapshot", "_texts")

    def __init__(self) -> None:
        self._snapshot: CatalogSnapshot | None = None
        self._rules: object = None
        # (query, count) -> the page; None: the query has no page statement.
        self._pages: OrderedDict[tuple[SearchQuery, bool], PreparedPage | None] = OrderedDict()
        self._texts: dict[str, str] = {}

    def get(
        self, snapshot: CatalogSnapshot, rules: object, query: SearchQuery, count: bool
    ) -> tuple[bool, PreparedPage | None]:
        """(found, page): whether this query was prepared on this snapshot and rules."""
        if snapshot is not self._snapshot or rules is not self._rules:
            self._pages.clear()
            self._texts.clear()
            self._snapshot, self._rules = snapshot, rules
            return False, None
        key = (query, count)
        pages = self._pages
        if key not in pages:
            return False, None
        pages.move_to_end(key)
        return True, pages[key]

    def put(self, query: SearchQuery, count: bool, page: PreparedPage | None) -> None:
        """Remember ``page`` for the snapshot and rules of the last ``get``."""
        pages = self._pages
        pages[hold_entry((hold_query(query), count))] = page  # search/held.py
        if len(pages) > PREPARED_PAGES:
            del pages[next(iter(pages))]
            if len(self._texts) > PREPARED_PAGES:
                self._texts.clear()  # texts are few; kept again as they recur

    def text(self, sql: str) -> str:
        """``sql``, as the one object every page with this text shares."""
        return self._texts.setdefault(sql, sql)

    def __len__(self) -> int:
        return len(self._pages)


class PagePreparer:
    """Works out what a relevance page sends first, once per query (kept in ``pages``)."""

    def __init__(
        self, tiered: TieredSearch, page_statement: PageStatement, snapshot: CatalogSnapshot
    ) -> None:
        self.tiered = tiered
        self.page_statement = page_statement
        self._counts = TitleCounts(snapshot.vocabulary)
        self.pages = PreparedPages()

    def prepared(
        self, snapshot: CatalogSnapshot, query: SearchQuery, *, count: bool
    ) -> PreparedPage | None:
        """The query's prepared page, worked out now if it is not remembered."""
        rules = self.tiered.rules.current()
        found, prepared = self.pages.get(snapshot, rules, query, count)
        if not found:
            # Out of the collector's view while the LRU keeps it (search/held.py).
            prepared = hold_prepared_page(self.prepare_page(snapshot, query, count=count))
            self.pages.put(query, count, prepared)
        return prepared

    def prepare_page(
        self, snapshot: CatalogSnapshot, query: SearchQuery, *, count: bool
    ) -> PreparedPage | None:
        """What a relevance page sends first, or None if it sends nothing (a plan that
        contradicts itself).

        The page's words, filters and size are worked out here as the algorithm
        will (``TieredSearch.search`` and ``_text_page``, for the year typed
        among the words too): the plan and its match come from the same LRUs,
        so the algorithm then finds them built.
        """
        filters = build_filters(snapshot, query, text=True) if count else Filters("", ())
        plan = self.tiered.plan(snapshot, query)
        if plan.contradicts_itself:
            return None
        if plan.year is not None:
            filters = with_year(filters, plan.year)
        match = self.tiered.pages.match(snapshot, plan)
        need = query.offset + query.limit
        if self._from_postings(snapshot, match, filters, need):
            return PreparedPage(match, filters, need, 1.0, (), (), None)
        share = filtered_share(snapshot, query, year=plan.year) if count else 1.0
        tried: list[TextMatch] = []
        cuts: list[Cut] = []
        # If no title has every word, the algorithm looks for the longest first
        # words that match (TextPages._resolve_words). When that is likely and the
        # words are few, its checks come along; the page of the words it keeps is
        # one more statement, asked when it reads it (``read_page``'s ``more``).
        if (
            1 < len(query.words) <= MAX_CUT_WORDS
            and matches_at_most(plan, self.counts(snapshot), TYPO_THRESHOLD) < TYPO_THRESHOLD
        ):
            tried = self._cuts(snapshot, query, plan)
            cuts = [Cut(cut, self._walks(snapshot, cut, 1, share)) for cut in tried]
        statement = self.page_sql(snapshot, match, filters, need, share, count, cuts)
        return PreparedPage(match, filters, need, share, tuple(tried), tuple(cuts), statement)

    def _from_postings(
        self, snapshot: CatalogSnapshot, match: TextMatch, filters: Filters, need: int
    ) -> bool:
        """Whether the title postings answer the page as on SQLite: they can answer the
        match (its filters, if any, tested on the columns stored with the hit rows; no
        part too broad) and ``as_typed`` needs nothing more (a set small enough to rank
        whole, or a broad one whose tiers the postings find: ``RankSets.tier_rows``), so
        the only read is the page's rows by rank, none when the hit rows hold them. Else
        the one statement: a tier's best rows from the postings and the rest from the
        index would be one more round trip."""
        sets = self.tiered.pages.rank_sets(snapshot, match, filters)
        return sets is not None and answered_from_sets(match, sets, need)

    def page_sql(
        self,
        snapshot: CatalogSnapshot,
        match: TextMatch,
        filters: Filters,
        need: int,
        share: float,
        count: bool,
        cuts: Sequence[Cut] = (),
    ) -> PageSql:
        """The one statement for the page of ``match``."""
        statement = self.page_statement
        bound = matches_at_most(match.plan, self.counts(snapshot), max(need, PROBE_ROWS) + 1)
        broad = bound > max(need, PROBE_ROWS)
        # The rank-ordered probe: common words walk the popularity index, rare
        # ones are read through GIN; the vocabulary's counts decide, not the planner.
        beyond_cap = count and self._beyond_cap(snapshot, match, filters, typos=False)
        typos_beyond_cap = (
            count
            and match.with_typos is not None
            and self._beyond_cap(snapshot, match, filters, typos=True)
        )
        counted = beyond_cap or not count
        limit = statement.probe_limit(match, need, filters, broad=broad, counted=counted)
        # Walked to the full L, the match walks to a shorter one too (build's L).
        walk = self._walks(snapshot, match, limit, share)
        words, movies = self.counts(snapshot), snapshot.movie_count
        drivers = (
            gin_driver(match, words, movies, typos=False),
            gin_driver(match, words, movies, typos=True) if match.with_typos else None,
        )
        sql, params, limit = statement.build(
            match,
            filters,
            need,
            broad=broad,
            count=count,
            cuts=cuts,
            walk=walk,
            counted=counted,
            drivers=drivers,
            typos_counted=typos_beyond_cap,
        )
        return PageSql(
            self.pages.text(sql), tuple(params), limit, broad, beyond_cap, typos_beyond_cap
        )

    def _beyond_cap(
        self, snapshot: CatalogSnapshot, match: TextMatch, filters: Filters, *, typos: bool
    ) -> bool:
        """Whether the vocabulary says the words (with ``typos``, or a typo candidate),
        unfiltered, match more than the count cap: then the count is known without
        reading that many matches. With a margin of as many again, for the word
        overlay's counts between imports."""
        if filters.sql:
            return False
        cap = self.page_statement.statements.count_cap(filters)
        floor = matches_at_least(match, self.counts(snapshot), typos=typos)
        return floor > CAP_MARGIN * (cap + 1)

    def counts(self, snapshot: CatalogSnapshot) -> TitleCounts:
        """The snapshot's title counts, remembered per word (a new snapshot starts afresh)."""
        if self._counts.vocabulary is not snapshot.vocabulary:
            self._counts = TitleCounts(snapshot.vocabulary)
        return self._counts

    def _walks(
        self, snapshot: CatalogSnapshot, match: TextMatch, limit: int, share: float
    ) -> tuple[bool, bool]:
        """Whether to walk the rank index for the match as typed, and with typos."""
        words, movies = self.counts(snapshot), snapshot.movie_count
        return (
            is_common(estimated_matches(match, words, movies, typos=False), share, limit, movies),
            is_common(estimated_matches(match, words, movies, typos=True), share, limit, movies),
        )

    def _cuts(
        self, snapshot: CatalogSnapshot, query: SearchQuery, plan: QueryPlan
    ) -> list[TextMatch]:
        """The matches of the first k words the bisection of ``_resolve_words`` may
        try: every k between its floor and all the words."""
        shortest = self.floor_words(query)
        return [self.cut(snapshot, query, plan, k) for k in range(shortest + 1, len(query.words))]

    @staticmethod
    def floor_words(query: SearchQuery) -> int:
        """How many first words ``_resolve_words`` never drops (a quoted phrase's end)."""
        ends_of_quotes = [end for _, end in query.quoted]
        return max(1, *ends_of_quotes) if ends_of_quotes else 1

    def cut(
        self, snapshot: CatalogSnapshot, query: SearchQuery, plan: QueryPlan, k: int
    ) -> TextMatch:
        """The match of the first k words, as ``_resolve_words`` builds it."""
        cut = self.tiered.plan(snapshot, query.first_words(k))
        return self.tiered.pages.match(
            snapshot, cut if plan.year is not None else cut.without_year()
        )
