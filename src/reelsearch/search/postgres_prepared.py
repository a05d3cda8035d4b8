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
from dataclasses import dataclass
from typing import Any

from reelsearch.search.filters import Filters
from reelsearch.search.matching import TextMatch
from reelsearch.search.postgres_page import Cut
from reelsearch.search.query import SearchQuery
from reelsearch.search.snapshot import CatalogSnapshot

# Prepared pages kept per worker: about 1-3 kB each (the texts are shared).
PREPARED_PAGES = 2048


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
    statement: PageSql


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
        pages[(query, count)] = page
        if len(pages) > PREPARED_PAGES:
            del pages[next(iter(pages))]
            if len(self._texts) > PREPARED_PAGES:
                self._texts.clear()  # texts are few; kept again as they recur

    def text(self, sql: str) -> str:
        """``sql``, as the one object every page with this text shares."""
        return self._texts.setdefault(sql, sql)

    def __len__(self) -> int:
        return len(self._pages)
