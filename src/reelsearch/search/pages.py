"""The pages of a text search in relevance order (the tiers).

Relevance reads a small match set whole and ranks it in Python
(``TextMatch.assess``); a broad one asks the index for each tier's best
rows, but for one word's, which the postings answer (both in ``as_typed.py``).
Here: the typo matches join when the words as typed match too few titles, and
trailing words nothing matches are dropped (also for sorted pages). The sets come
from the catalog's postings when they can answer (``rank_sets.py``), else from the
index's statements.
Pages in a column's order, and searches without words, are ``sorted_pages.py``'s.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import Any

from reelsearch.search.as_typed import PROBE_ROWS as PROBE_ROWS
from reelsearch.search.as_typed import TYPO_THRESHOLD as TYPO_THRESHOLD
from reelsearch.search.as_typed import as_typed
from reelsearch.search.as_typed import tier_plain_limit as tier_plain_limit
from reelsearch.search.counting import Statement, TextStatements
from reelsearch.search.filters import Filters
from reelsearch.search.held import hold_match
from reelsearch.search.matching import TextMatch
from reelsearch.search.plan import QueryPlan
from reelsearch.search.query import SearchQuery
from reelsearch.search.rank_sets import RankSets
from reelsearch.search.readers import Reader, Row
from reelsearch.search.rows import (
    COLUMNS,
    Page,
    titles_of_ranked_row,
)
from reelsearch.search.snapshot import CatalogSnapshot

# Compiled matches kept: as many as the plans tiered.py keeps.
MATCH_CACHE_SIZE = 4096

Planner = Callable[[CatalogSnapshot, SearchQuery], QueryPlan]


class TextPages:
    """Reads the page of a text search (and of a wordless one) through ``statements``."""

    def __init__(self, statements: TextStatements, plan: Planner) -> None:
        self.statements = statements
        self.plan = plan
        self.syntax = statements.dialect.syntax
        # Compiled expressions per plan, for one catalog version at a time (a
        # match holds the snapshot's vocabulary and typo index).
        self._matches: OrderedDict[int, TextMatch] = OrderedDict()
        self._matches_version: int | None = None
        # Statement texts, built once per filters' SQL (and count of tiers): see
        # TextStatements; filters' SQL is made of fixed parts, so the keys are few.
        self._rows_sql: dict[str, str] = {}
        self._tiers_sql: dict[tuple[str, int], str] = {}

    def match(self, snapshot: CatalogSnapshot, plan: QueryPlan) -> TextMatch:
        """The plan's index expressions, built once per plan while this catalog version lasts.

        Keyed by the plan object's identity: plans come from the planner's LRU,
        so a recurring query brings the same object, and hashing a plan (nested
        frozen dataclasses, rehashed on every lookup) cost more than a tenth of
        a typo search. The match holds its plan, so the id is not reused while
        the entry lives. The entry is the match alone: a (plan, match) tuple
        would be unboxed and boxed anew by the compiled module (mypyc keeps
        fixed-length tuples as C structs), a tracked copy each time
        (search/held.py).
        """
        matches = self._matches
        if self._matches_version != snapshot.version:
            matches.clear()
            self._matches_version = snapshot.version
        key = id(plan)
        found = matches.get(key)
        if found is not None and found.plan is plan:
            matches.move_to_end(key)
            return found
        found = hold_match(TextMatch(snapshot, plan, self.syntax))  # search/held.py
        matches[key] = found
        if len(matches) > MATCH_CACHE_SIZE:
            del matches[next(iter(matches))]
        return found

    async def resolve_words(
        self,
        db: Reader,
        snapshot: CatalogSnapshot,
        query: SearchQuery,
        filters: Filters,
        plan: QueryPlan,
        *,
        whole_query_fails: bool = False,
    ) -> TextMatch:
        """The query's words, less trailing words that nothing matches (with typos too).

        A dropped word ends the query, so the word before it counts as finished:
        "mat xyzzy" searches for the word "mat", not for "mat*". Fewer words
        match at least the titles more words do, so the longest prefix of the
        words that matches is found by bisection: a few plans and reads for
        any number of words, where dropping one word at a time re-planned and
        read once per dropped word. A quoted phrase is never cut short, nor a
        query to no words. ``whole_query_fails``: the caller has already found
        that every word matches nothing, as typed or through typos, so the
        bisection starts one word shorter.
        """
        reads_year = plan.year is not None  # then `filters` hold the year's condition
        ends_of_quotes = [end for _, end in query.quoted]
        shortest = max(1, *ends_of_quotes) if ends_of_quotes else 1
        match = self.match(snapshot, plan)
        if shortest >= len(query.words):  # a quote to the end, or one word: never cut
            return match
        longest = len(query.words) - whole_query_fails
        # The invariant: the first `shortest` words are accepted (found, or the floor).
        best = None
        while shortest < longest:
            middle = (shortest + longest + 1) // 2
            if middle == len(query.words):
                candidate = match
            else:
                cut = self.plan(snapshot, query.first_words(middle))
                candidate = self.match(snapshot, cut if reads_year else cut.without_year())
            if await self._matches_any(db, snapshot, candidate, filters):
                shortest, best = middle, candidate
            else:
                longest = middle - 1
        if best is None:  # nothing matched: the floor
            cut = self.plan(snapshot, query.first_words(shortest))
            best = self.match(snapshot, cut if reads_year else cut.without_year())
        return best

    async def _matches_any(
        self, db: Reader, snapshot: CatalogSnapshot, match: TextMatch, filters: Filters
    ) -> bool:
        """Whether any title matches ``match``'s words, as typed or with typos."""
        sets = self.rank_sets(snapshot, match, filters)
        if sets is not None:
            return bool(len(sets.plain)) or (
                match.with_typos is not None and bool(len(sets.with_typos))
            )
        return await self.statements.exists(db, match.plain, filters) or (
            match.with_typos is not None
            and await self.statements.exists(db, match.with_typos, filters)
        )

    @staticmethod
    def rank_sets(snapshot: CatalogSnapshot, match: TextMatch, filters: Filters) -> RankSets | None:
        """The match sets from the catalog's postings, when they can answer for FTS5:
        there are postings, the filters (if any) can be tested on the columns stored
        with the hit rows (``filter_columns.py``), and no part of the expression is too
        broad (``rank_sets.py``)."""
        postings = snapshot.postings
        if postings is None:
            return None
        if not filters.sql:
            return RankSets.of(postings, match)
        wanted, hit_rows = filters.columns, snapshot.hit_rows
        columns = hit_rows.filter_columns if hit_rows is not None else None
        if wanted is None or columns is None:
            return None
        return RankSets.of(postings, match, partial(columns.keep, wanted=wanted))

    async def typos_join(
        self,
        db: Reader,
        match: TextMatch,
        filters: Filters,
        plain_total: int,
        exact: bool,
        sets: RankSets | None = None,
    ) -> bool:
        """Typo matches join the result set when the words as typed match too few titles.

        Too few counts every typed word, stop words too: "la pete" matches
        56 titles with "pete" and none with "la" as well, so La Peste (a typo
        away, "la" included) joins them. That second count is asked only of
        a set small enough to be ranked whole (PROBE_ROWS). The rule depends
        on the query alone (not on the page or the sort), so totals, facets
        and pages agree with each other.
        """
        if match.with_typos is None:
            return False
        if plain_total < TYPO_THRESHOLD:
            return True
        if match.strict is None or not exact or plain_total > PROBE_ROWS:
            return False
        strict = sets.strict if sets is not None else None
        if strict is not None:
            return len(strict) < TYPO_THRESHOLD
        return (
            await self.statements.count_up_to(db, match.strict, filters, TYPO_THRESHOLD)
            < TYPO_THRESHOLD
        )

    async def relevance_page(
        self,
        db: Reader,
        snapshot: CatalogSnapshot,
        query: SearchQuery,
        filters: Filters,
        plan: QueryPlan,
        *,
        count: bool = True,
    ) -> Page:
        """The page, the total, whether it is exact, and the expression of the result set."""
        match = self.match(snapshot, plan)
        need = query.offset + query.limit
        sets = self.rank_sets(snapshot, match, filters)
        ranks, rows, assessed, plain_total, exact = await as_typed(
            self, db, match, filters, need, count=count, sets=sets
        )
        # Typo matches of `match` read already, in popularity order (None: not read).
        typo_rows: list[Row] | None = None
        if not ranks and len(query.words) > 1:
            # Nothing has every word as typed. Most often one word is mistyped:
            # read the typo matches of the whole query first (the read the typo
            # tier makes anyway); only if there are none, drop unmatched
            # trailing words.
            if match.with_typos is not None:
                typo_rows = await self._typo_rows(
                    db, match, filters, max(need, PROBE_ROWS) + 1, sets
                )
            if not typo_rows:
                typo_rows = None
                resolved = await self.resolve_words(
                    db, snapshot, query, filters, plan, whole_query_fails=True
                )
                if resolved is not match:
                    match = resolved
                    sets = self.rank_sets(snapshot, match, filters)
                    ranks, rows, assessed, plain_total, exact = await as_typed(
                        self, db, match, filters, need, count=count, sets=sets
                    )
        typo_ranks: frozenset[int] = frozenset()
        total, matched = plain_total, match.plain
        if await self.typos_join(db, match, filters, plain_total, exact, sets):
            assert match.with_typos is not None
            # Every match as typed is in `ranks` here (there are at most
            # PROBE_ROWS, all read and ranked), so typo matches are "with typos"
            # minus those, without making the index evaluate the as-typed
            # words again.
            plain = set(ranks)
            wanted = max(need - len(ranks), 1)
            # Read typo matches in popularity order, enough to fill the page.
            # If that is all of them, a corrected title with no words beyond
            # the query's goes first ("the barin" -> The Brain, before The
            # Brain That Wouldn't Die); a broad set keeps popularity order,
            # as sorting 100 k "night" titles for "ngiht" would cost more
            # than the whole search.
            fetch = max(wanted, PROBE_ROWS) + len(plain) + 1
            if typo_rows is not None and not plain:  # read above, with this very limit
                found = typo_rows
            else:
                found = await self._typo_rows(db, match, filters, fetch, sets)
            is_all = len(found) < fetch
            found = [row for row in found if row[0] not in plain]
            if sets is None:  # full rows: the page's are known
                rows.update((row[0], row) for row in found)
            titles = titles_of_ranked_row if sets is None else sets.titles_of_row
            typo_ranks = frozenset(row[0] for row in found)
            # Whether the set is small enough to rank whole depends on the
            # query alone, never on the page, so pages never overlap or skip.
            # Then typo matches rank among the others ("the barin": The Brain
            # before Brain Donors, which lacks "the"); if not, they follow
            # them in popularity order, as sorting 100 k "night" titles for
            # "ngiht" would cost more than the whole search.
            if is_all and len(found) <= PROBE_ROWS:
                assessed.update(
                    (row[0], match.assess(titles(row), typo_match=True)) for row in found
                )
                order = sorted((assessed[rank].sort_key, rank) for rank in (*ranks, *typo_ranks))
                ranks = [rank for _, rank in order[:need]]
            else:
                ranks += [row[0] for row in found][: max(need - len(ranks), 0)]
            matched = f"({match.with_typos})"
            if is_all or not count:
                total, exact = self.statements.capped(total + len(found), filters)
                exact = exact and is_all
            elif sets is not None:
                everything, all_exact = self.statements.capped(len(sets.with_typos), filters)
                total, exact = max(everything, total), exact and all_exact
            else:
                everything, all_exact = await self.statements.count(db, match.with_typos, filters)
                total, exact = max(everything, total), exact and all_exact
        shown = ranks[query.offset : need]
        # The rows read so far hold their rank in front: cut it off the page's only.
        known = {rank: rows[rank][1:] for rank in shown if rank in rows}
        page = await self._page_rows(db, snapshot, shown, known)
        return Page(page, total, exact, matched, match, typo_ranks, assessed=assessed)

    async def _page_rows(
        self, db: Reader, snapshot: CatalogSnapshot, shown: list[int], known: dict[int, Row]
    ) -> list[Row]:
        """The rows of the ranks ``shown``: ``known`` ones, the snapshot's hit rows
        (search/hit_rows.py) where they hold the catalog's, the rest by statement.

        The hit rows are the catalog at the snapshot's version. A page whose ranks
        all came from the snapshot (its postings: no statement ran) takes them as
        they are; one that read the catalog (the tiers of a broad match of several
        words, a year among the words) takes
        them only if the catalog it read is still that version of that file: between
        a write, or another file moved to the path, and the poller's reload, its
        ranks may name movies the snapshot has not seen.
        """
        hit_rows = snapshot.hit_rows
        if (
            hit_rows is not None
            and any(rank not in known for rank in shown)  # else no row to find: no check
            and (db.seconds == 0.0 or await hit_rows.is_current(db, snapshot.version))
        ):
            hit_rows.fill(shown, known)
        return await self.statements.rows_by_rank(db, shown, known)

    async def _typo_rows(
        self, db: Reader, match: TextMatch, filters: Filters, limit: int, sets: RankSets | None
    ) -> list[Row]:
        """The first ``limit`` titles matching with typos, in popularity order,
        as (rank, *COLUMNS) rows; as (rank,) from ``sets``."""
        assert match.with_typos is not None
        if sets is not None:
            return [(rank,) for rank in sets.with_typos[:limit].tolist()]
        return await db.rows(*self.rows_statement(match.with_typos, filters, limit))

    def rows_statement(self, expression: str, filters: Filters, limit: int) -> Statement:
        """The first ``limit`` titles matching ``expression`` in popularity order, as
        (rank, *COLUMNS) rows: the probe's statement, and the typo matches'.

        The statement builders here are also the keys of the answers the
        PostgreSQL page finds in its one statement (``postgres_page.py``).
        """
        sql = self._rows_sql.get(filters.sql)
        if sql is None:
            sql = (
                f"SELECT m.search_rank, {COLUMNS} FROM {self.statements.text}"
                f"{filters.sql} ORDER BY {self.statements.dialect.text_rank} LIMIT ?"
            )
            self._rows_sql[filters.sql] = sql
        return sql, (expression, *filters.params, limit)

    def tiers_statement(
        self, match: TextMatch, filters: Filters, need: int, *, from_probe: bool
    ) -> Statement:
        """Tiers 0 to k in one statement, as (tier, rank, norm_title) rows; the last
        tier (every word) left out when the probe's rows hold it (``from_probe``).

        Tier k's first rows may repeat the k tiers before it, so it reads
        need * (k + 1) rows to be sure of `need` new ones.
        """
        tiers = [*match.preferred, match.plain]
        plain_limit = tier_plain_limit(match, need)
        asked = tiers[:-1] if from_probe else tiers
        params: list[Any] = [match.word_key, *filters.params, need]
        for tier, expression in enumerate(asked, start=1):
            limit = plain_limit if tier == len(tiers) else need * (tier + 1)
            params += [expression, *filters.params, limit]
        key = (filters.sql, len(asked))
        sql = self._tiers_sql.get(key)
        if sql is None:  # at most a handful of tiers per filters' SQL
            sql = self._tiers_sql[key] = self._tiers_sql_text(filters, len(asked))
        return sql, tuple(params)

    def _tiers_sql_text(self, filters: Filters, asked: int) -> str:
        """``tiers_statement``'s text: tier 0 (the exact title), then ``asked`` tiers."""
        rank = self.statements.dialect.text_rank
        source = self.statements.text_from(filters)
        parts = [
            f"SELECT * FROM (SELECT 0 AS tier, m.search_rank, m.norm_title FROM movies AS m "
            f"WHERE m.word_key = ?{filters.sql} ORDER BY m.search_rank LIMIT ?) AS t0"
        ]
        parts += [
            f"SELECT * FROM (SELECT {tier}, {rank}, NULL FROM {source}"
            f"{filters.sql} ORDER BY {rank} LIMIT ?) AS t{tier}"
            for tier in range(1, asked + 1)
        ]
        return " UNION ALL ".join(parts)
