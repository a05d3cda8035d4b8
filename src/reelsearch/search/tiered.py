"""The search algorithm, written once for every SQL backend.

Relevance is a short list of tiers, each filled in popularity order:

1. the title is exactly the query's words (as typed first, then in any order);
2. the words side by side as typed, at the start of the title, then anywhere;
3. a finished last word as itself, before its completions;
4. every word as typed (the last one as a prefix while typing);
5. every word, some through a typo, only when fewer than TYPO_THRESHOLD
   titles match as typed; titles with no words beyond the query's first.

``search/matching.py`` turns the words into text-index expressions for
these tiers and ranks a small match set into them in Python; ``search/sql.py``
holds what differs between SQLite (FTS5, whose rowid is the popularity rank,
so ``ORDER BY rowid LIMIT n`` reads n matches and stops) and PostgreSQL (a
GIN-indexed tsvector on movies). The engines (``sqlite.py``, ``postgres.py``)
only open connections and hold the catalog snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from reelsearch.config import Settings
from reelsearch.errors import InvalidRequest
from reelsearch.search.engine import Hit, SearchResult
from reelsearch.search.highlight import spans
from reelsearch.search.matching import TIER_NAMES, Assessment, TextMatch, titles_of
from reelsearch.search.normalize import normalize
from reelsearch.search.plan import QueryPlan, plan_query
from reelsearch.search.query import MOVIE_FIELDS, SearchQuery
from reelsearch.search.rulebook import RuleFiles
from reelsearch.search.snapshot import CatalogSnapshot
from reelsearch.search.sql import Dialect, Reader, Row

# The hit's fields, then what ranking, highlights and explain read about it.
COLUMNS = (
    "m.id, m.title, m.year, m.rating, m.votes, m.genres, m.runtime_min, m.kind, "
    "m.norm_title, m.alt_norm_titles, m.search_rank"
)
NORM_TITLE, ALT_NORM_TITLES, SEARCH_RANK = 8, 9, 10
SORT_SQL = {
    "relevance": "m.search_rank",
    "year": "m.year IS NULL, m.year, m.search_rank",
    "-year": "m.year IS NULL, m.year DESC, m.search_rank",
    "rating": "m.rating IS NULL, m.rating, m.search_rank",
    "-rating": "m.rating IS NULL, m.rating DESC, m.search_rank",
    "votes": "m.votes, m.search_rank",
    "-votes": "m.votes DESC, m.search_rank",
}
# Up to this many titles matching every word are ranked in Python in one read;
# more, and each tier is asked of the index separately.
PROBE_ROWS = 64
# Text with filters is counted exactly only this far (total_is_exact=false beyond).
FILTERED_COUNT_CAP = 100
# Typo matches join the results when the words as typed match fewer titles than this.
TYPO_THRESHOLD = 10
# Sorts on columns that may be NULL; such titles are listed after the others.
NULLABLE_SORTS = {"year": "year", "-year": "year", "rating": "rating", "-rating": "rating"}


@dataclass(frozen=True, slots=True)
class _Filters:
    """SQL conditions on ``m`` and their parameters."""

    sql: str
    params: tuple[Any, ...]


def _row_to_hit(row: Sequence[Any], fields: Sequence[str]) -> Hit:
    movie = {
        "id": row[0], "title": row[1], "year": row[2], "rating": row[3], "votes": row[4],
        "genres": row[5].split(",") if row[5] else [], "runtime_min": row[6], "kind": row[7],
        "matched_title": None, "highlights": None,
    }  # fmt: skip
    return {name: movie[name] for name in fields}


def _titles(row: Row) -> list[str]:
    """A hit row's normalized titles, primary first."""
    return titles_of(row[NORM_TITLE], row[ALT_NORM_TITLES])


def _with_year(filters: _Filters, year: int) -> _Filters:
    """A year typed among the words: the movie is from that year, or its title says it."""
    return _Filters(
        f"{filters.sql} AND (m.year = ? OR (' ' || m.norm_title || ' ') LIKE ?)",
        (*filters.params, year, f"% {year} %"),
    )


def _explain(
    assessment: Assessment, titles: list[str], words: frozenset[str], row: Row
) -> dict[str, Any]:
    """A hit's rank in its parts: compared in this order, lower first, popularity last."""
    return {
        "rank_key": [*assessment.sort_key, row[SEARCH_RANK]],
        "text_match": {
            "tier": assessment.tier,
            "tier_name": TIER_NAMES[assessment.tier],
            "title": titles[assessment.title_index],
            "alternate_title": assessment.title_index > 0,
            "matched_words": sorted(words),
        },
        "typos": assessment.typos,
        "exactness": {
            "exact_title": assessment.tier == 0,
            "words_in_typed_order": assessment.order,
            "missing_stop_words": assessment.missing,
            "split_or_joined_words": assessment.respaced,
        },
        "popularity": {"search_rank": row[SEARCH_RANK], "votes": row[4], "rating": row[3]},
    }


@dataclass(slots=True)
class _Page:
    rows: list[Row]
    total: int
    exact: bool
    matched: str | None = None  # the text expression of the whole result set
    match: TextMatch | None = None
    typo_ranks: frozenset[int] = frozenset()  # hits found only through a typo
    filters: _Filters | None = None  # the filters the page was read with (a year adds one)
    assessed: dict[int, Assessment] = field(default_factory=dict)  # by rank, if ranked so


class TieredSearch:
    """Search, autocomplete and movie details on one backend's SQL dialect.

    Holds no connection: each call gets a ``Reader`` for one request's
    connection, and the engine's current ``CatalogSnapshot``.
    """

    def __init__(self, settings: Settings, dialect: Dialect) -> None:
        self.settings = settings
        self.dialect = dialect
        self.syntax = dialect.syntax
        # Fragments for "the text matches" with and without columns of movies.
        self._text = f"{dialect.text_source} WHERE {dialect.text_match}"
        self._ranks = f"{dialect.rank_source} WHERE {dialect.text_match}"
        self.rules = RuleFiles(
            settings.synonyms_path, settings.stopwords_path, settings.catalog_poll_seconds
        )

    def plan(self, snapshot: CatalogSnapshot, query: SearchQuery) -> QueryPlan:
        return plan_query(query, self.rules.current(), snapshot.vocabulary)

    def _text_from(self, filters: _Filters) -> str:
        """FROM ... WHERE text matches: joined to movies only if filters need its columns."""
        return self._text if filters.sql else self._ranks

    # -- reads ---------------------------------------------------------------

    async def get_movie(self, db: Reader, movie_id: int) -> Hit | None:
        row = await db.row(
            f"SELECT {COLUMNS}, m.original_title, m.updated_at FROM movies AS m WHERE m.id = ?",
            (movie_id,),
        )
        if row is None:
            return None
        movie = _row_to_hit(row, MOVIE_FIELDS)
        movie["original_title"] = row[SEARCH_RANK + 1]
        movie["updated_at"] = row[SEARCH_RANK + 2]
        movie["alt_titles"] = [
            title for (title,) in await db.rows(
                "SELECT title FROM alt_titles WHERE movie_id = ? ORDER BY title", (movie_id,)
            )
        ]  # fmt: skip
        return movie

    async def autocomplete(
        self, db: Reader, snapshot: CatalogSnapshot, query: SearchQuery
    ) -> list[Hit]:
        if not query.words:
            return []
        fields = ("id", "title", "year")
        page = await self._text_page(db, snapshot, query, _Filters("", ()), count=False)
        return [_row_to_hit(row, fields) for row in page.rows]

    async def search(
        self, db: Reader, snapshot: CatalogSnapshot, query: SearchQuery
    ) -> SearchResult:
        filters = self._filters(snapshot, query, text=bool(query.words))
        if not query.words:
            page = _Page(*await self._browse(db, snapshot, query, filters))
        else:
            page = await self._text_page(db, snapshot, query, filters)
            filters = page.filters or filters
        facets = None
        if query.facets:
            facets = await self._facets(db, snapshot, query, filters, page.matched)
        hits = [_row_to_hit(row, query.fields) for row in page.rows]
        if page.match is not None and (
            query.explain or "highlights" in query.fields or "matched_title" in query.fields
        ):
            await self._annotate(db, query, page, hits)
        return SearchResult(
            hits=hits,
            total=page.total,
            total_is_exact=page.exact,
            facets=facets,
            next_cursor=query.next_cursor(page.total, page.exact, len(page.rows)),
        )

    async def _text_page(
        self,
        db: Reader,
        snapshot: CatalogSnapshot,
        query: SearchQuery,
        filters: _Filters,
        *,
        count: bool = True,
    ) -> _Page:
        """The page of a text search in the order asked for.

        A year among the words first narrows to that year (or titles saying
        it); if nothing is left, the year is read as a plain word again.
        """
        plan = self.plan(snapshot, query)
        if plan.contradicts_itself:  # "matrix -matrix": no title can match (facets neither)
            match = TextMatch(snapshot, plan, self.syntax)
            return _Page([], 0, True, match.plain, match, filters=filters)
        read = self._relevance_page if query.sort == "relevance" else self._sorted_text_page
        if plan.year is not None:
            narrowed = _with_year(filters, plan.year)
            page = await read(db, snapshot, query, narrowed, plan, count=count)
            if page.rows or page.total:
                page.filters = narrowed
                return page
            plan = plan.without_year()
        page = await read(db, snapshot, query, filters, plan, count=count)
        page.filters = filters
        return page

    async def _annotate(self, db: Reader, query: SearchQuery, page: _Page, hits: list[Hit]) -> None:
        """matched_title, highlights and explain, for the hits of this page only."""
        match = page.match
        assert match is not None
        assessed: list[tuple[Assessment, list[str]]] = []
        for row in page.rows:
            titles = _titles(row)
            known = None if query.explain else page.assessed.get(row[SEARCH_RANK])
            if known is None:  # not ranked by its words, or explained in full
                typo = row[SEARCH_RANK] in page.typo_ranks
                known = match.assess(titles, typo_match=typo, detail=query.explain)
            assessed.append((known, titles))
        shown = await self._alternate_titles_shown(db, page.rows, assessed)
        prefix = match.words[-1] if match.plan.last_is_prefix and match.words else None
        for hit, row, (assessment, titles), title in zip(
            hits, page.rows, assessed, shown, strict=True
        ):
            words = match.matched_words(
                titles[assessment.title_index], typo_match=row[SEARCH_RANK] in page.typo_ranks
            )
            if "matched_title" in hit:
                hit["matched_title"] = title
            if "highlights" in hit:
                highlights = {"title": spans(row[1], words, prefix)}
                if title is not None:
                    highlights["matched_title"] = spans(title, words, prefix)
                hit["highlights"] = highlights
            if query.explain:
                hit["explain"] = _explain(assessment, titles, words, row)

    async def _alternate_titles_shown(
        self, db: Reader, rows: list[Row], assessed: list[tuple[Assessment, list[str]]]
    ) -> list[str | None]:
        """The displayed alternate title each hit matched best (None: its own title)."""
        wanted = {
            row[0]: titles[a.title_index]
            for row, (a, titles) in zip(rows, assessed, strict=True)
            if a.title_index
        }
        if not wanted:
            return [None] * len(rows)
        marks = ",".join("?" * len(wanted))
        found: dict[int, str] = {}
        for movie_id, title in await db.rows(
            f"SELECT movie_id, title FROM alt_titles WHERE movie_id IN ({marks}) UNION ALL "
            f"SELECT id, original_title FROM movies WHERE id IN ({marks}) "
            "AND original_title IS NOT NULL ORDER BY 1, 2",
            [*wanted, *wanted],
        ):
            if movie_id not in found and normalize(title) == wanted[movie_id]:
                found[movie_id] = title
        return [found.get(row[0], wanted.get(row[0])) if row[0] in wanted else None for row in rows]

    # -- filters -----------------------------------------------------------

    def _filters(self, snapshot: CatalogSnapshot, query: SearchQuery, *, text: bool) -> _Filters:
        parts: list[str] = []
        params: list[Any] = []
        bounds = (
            ("m.year >= ?", query.year_from),
            ("m.year <= ?", query.year_to),
            ("m.rating >= ?", query.min_rating),
            ("m.votes >= ?", query.min_votes),
        )
        for condition, value in bounds:
            if value is not None:
                parts.append(condition)
                params.append(value)
        if query.kind is not None:
            if query.kind not in snapshot.kinds:
                raise InvalidRequest(
                    f"kind {query.kind[:30]!r} is not in the catalog; "
                    f"known: {', '.join(sorted(snapshot.kinds))}",
                    param="kind",
                )
            parts.append("m.kind = ?")
            params.append(query.kind)
        if query.genres:
            bits = []
            for name in query.genres:
                found = snapshot.genres.get(name.lower())
                if found is None:
                    known = ", ".join(sorted(display for _, display in snapshot.genres.values()))
                    raise InvalidRequest(
                        f"genre {name[:30]!r} is not in the catalog; known: {known}",
                        param="genres",
                    )
                bits.append(found[0])
            mask = sum(1 << bit for bit in bits)
            if text:
                # Few rows reach the filter after the text match: a bit test is cheapest.
                if query.genres_mode == "all":
                    parts.append("(m.genre_mask & ?) = ?")
                    params += [mask, mask]
                else:
                    parts.append("(m.genre_mask & ?) != 0")
                    params.append(mask)
            else:
                # Browsing a genre: read only its rows through movie_genres.
                marks = ", ".join("?" * len(bits))
                having = f" GROUP BY search_rank HAVING count(*) = {len(bits)}"
                parts.append(
                    "m.search_rank IN (SELECT search_rank FROM movie_genres "
                    f"WHERE genre_bit IN ({marks})"
                    f"{having if query.genres_mode == 'all' and len(bits) > 1 else ''})"
                )
                params += bits
        sql = "".join(f" AND {part}" for part in parts)
        return _Filters(sql, tuple(params))

    # -- pages ---------------------------------------------------------------

    async def _resolve_words(
        self,
        db: Reader,
        snapshot: CatalogSnapshot,
        query: SearchQuery,
        filters: _Filters,
        plan: QueryPlan,
    ) -> TextMatch:
        """The query's words, less trailing words that nothing matches (with typos too).

        A dropped word ends the query, so the word before it counts as finished:
        "mat xyzzy" searches for the word "mat", not for "mat*". Fewer words
        match at least the titles more words do, so the longest prefix of the
        words that matches is found by bisection: a few plans and reads for
        any number of words, where dropping one word at a time re-planned and
        read once per dropped word. A quoted phrase is never cut short, nor a
        query to no words.
        """
        reads_year = plan.year is not None  # then `filters` hold the year's condition
        ends_of_quotes = [end for _, end in query.quoted]
        shortest = max(1, *ends_of_quotes) if ends_of_quotes else 1
        longest = len(query.words)
        match = TextMatch(snapshot, plan, self.syntax)
        # The invariant: the first `shortest` words are accepted (found, or the floor).
        best = match if longest <= shortest else None
        while shortest < longest:
            middle = (shortest + longest + 1) // 2
            if middle == len(query.words):
                candidate = match
            else:
                cut = self.plan(snapshot, query.first_words(middle))
                candidate = TextMatch(
                    snapshot, cut if reads_year else cut.without_year(), self.syntax
                )
            if await self._exists(db, candidate.plain, filters) or (
                candidate.with_typos is not None
                and await self._exists(db, candidate.with_typos, filters)
            ):
                shortest, best = middle, candidate
            else:
                longest = middle - 1
        if best is None:  # nothing matched: the floor
            cut = self.plan(snapshot, query.first_words(shortest))
            best = TextMatch(snapshot, cut if reads_year else cut.without_year(), self.syntax)
        return best

    async def _typos_join(
        self, db: Reader, match: TextMatch, filters: _Filters, plain_total: int, exact: bool
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
        return await self._count_up_to(db, match.strict, filters, TYPO_THRESHOLD) < TYPO_THRESHOLD

    async def _relevance_page(
        self,
        db: Reader,
        snapshot: CatalogSnapshot,
        query: SearchQuery,
        filters: _Filters,
        plan: QueryPlan,
        *,
        count: bool = True,
    ) -> _Page:
        """The page, the total, whether it is exact, and the expression of the result set."""
        match = TextMatch(snapshot, plan, self.syntax)
        need = query.offset + query.limit
        ranks, rows, assessed, plain_total, exact = await self._as_typed(
            db, match, filters, need, count=count
        )
        if not ranks and len(query.words) > 1:
            # Nothing has every word as typed: drop unmatched trailing words.
            match = await self._resolve_words(db, snapshot, query, filters, plan)
            ranks, rows, assessed, plain_total, exact = await self._as_typed(
                db, match, filters, need, count=count
            )
        typo_ranks: frozenset[int] = frozenset()
        total, matched = plain_total, match.plain
        if await self._typos_join(db, match, filters, plain_total, exact):
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
            found = await db.rows(
                f"SELECT m.search_rank, {COLUMNS} FROM {self._text}"
                f"{filters.sql} ORDER BY {self.dialect.text_rank} LIMIT ?",
                (match.with_typos, *filters.params, fetch),
            )
            is_all = len(found) < fetch
            found = [row for row in found if row[0] not in plain]
            rows.update((row[0], row[1:]) for row in found)
            typo_ranks = frozenset(row[0] for row in found)
            # Whether the set is small enough to rank whole depends on the
            # query alone, never on the page, so pages never overlap or skip.
            # Then typo matches rank among the others ("the barin": The Brain
            # before Brain Donors, which lacks "the"); if not, they follow
            # them in popularity order, as sorting 100 k "night" titles for
            # "ngiht" would cost more than the whole search.
            if is_all and len(found) <= PROBE_ROWS:
                assessed.update(
                    (row[0], match.assess(_titles(row[1:]), typo_match=True)) for row in found
                )
                ranks = sorted(
                    (*ranks, *typo_ranks), key=lambda rank: (assessed[rank].sort_key, rank)
                )[:need]
            else:
                ranks += [row[0] for row in found][: max(need - len(ranks), 0)]
            matched = f"({match.with_typos})"
            if is_all or not count:
                total, exact = self._capped(total + len(found), filters)
                exact = exact and is_all
            else:
                everything, all_exact = await self._count(db, match.with_typos, filters)
                total, exact = max(everything, total), exact and all_exact
        page = await self._rows_by_rank(db, ranks[query.offset : need], rows)
        return _Page(page, total, exact, matched, match, typo_ranks, assessed=assessed)

    async def _as_typed(
        self, db: Reader, match: TextMatch, filters: _Filters, need: int, *, count: bool
    ) -> tuple[list[int], dict[int, Row], dict[int, Assessment], int, bool]:
        """Tiers 1-3 as popularity ranks, hit rows already read and their
        assessments (by rank, when ranked in Python), and how many titles
        match the words as typed (exactly, or up to the cap)."""
        rank = self.dialect.text_rank
        # Most known-item queries match a handful of titles: read them all in
        # one text query and sort them into tiers here, from their words.
        probe = max(need, PROBE_ROWS)
        found = await db.rows(
            f"SELECT m.search_rank, {COLUMNS} FROM {self._text}"
            f"{filters.sql} ORDER BY {rank} LIMIT ?",
            (match.plain, *filters.params, probe + 1),
        )
        if len(found) <= probe:
            assess = match.assess
            assessed = {row[0]: assess(_titles(row[1:])) for row in found}
            ranked = sorted(assessed, key=lambda rank: (assessed[rank].sort_key, rank))
            rows = {row[0]: row[1:] for row in found}
            return ranked, rows, assessed, *self._capped(len(found), filters)
        # Broad queries: each tier asks the index for its own best rows.
        # Tier k's first rows may repeat the k tiers before it, so it reads
        # need * (k + 1) rows to be sure of `need` new ones.
        tiers = [*match.preferred, match.plain]
        plain_limit = max(need * (len(tiers) + 1), TYPO_THRESHOLD)
        source = self._text_from(filters)
        parts = [
            f"SELECT * FROM (SELECT 0 AS tier, m.search_rank, m.norm_title FROM movies AS m "
            f"WHERE m.word_key = ?{filters.sql} ORDER BY m.search_rank LIMIT ?) AS t0"
        ]
        params: list[Any] = [match.word_key, *filters.params, need]
        for tier, expression in enumerate(tiers, start=1):
            limit = plain_limit if tier == len(tiers) else need * (tier + 1)
            parts.append(
                f"SELECT * FROM (SELECT {tier}, {rank}, NULL FROM {source}"
                f"{filters.sql} ORDER BY {rank} LIMIT ?) AS t{tier}"
            )
            params += [expression, *filters.params, limit]
        found = await db.rows(" UNION ALL ".join(parts), params)
        # Tier, then (for exact titles) the words in the order typed, then popularity.
        found.sort(
            key=lambda row: (row[0], -match.order_score(row[2].split()) if row[2] else 0, row[1])
        )
        ranks: list[int] = []
        seen: set[int] = set()
        plain_rows = 0
        for tier, rank_of_row, _ in found:
            if tier == len(tiers):
                plain_rows += 1
            if rank_of_row not in seen:
                seen.add(rank_of_row)
                ranks.append(rank_of_row)
        if plain_rows < plain_limit:  # every match is here: the count is exact
            return ranks, {}, {}, *self._capped(plain_rows, filters)
        if not count:
            return ranks, {}, {}, plain_rows, False
        total, exact = await self._count(db, match.plain, filters)
        return ranks, {}, {}, total, exact

    async def _rows_by_rank(
        self, db: Reader, ranks: Sequence[int], known: dict[int, Row]
    ) -> list[Row]:
        """The hit columns of ``ranks``, in that order: ``known`` ones, the rest in one read."""
        missing = [rank for rank in ranks if rank not in known]
        if missing:
            marks = ",".join("?" * len(missing))
            known = dict(known)
            known.update(
                (row[SEARCH_RANK], row)
                for row in await db.rows(
                    f"SELECT {COLUMNS} FROM movies AS m WHERE m.search_rank IN ({marks})",
                    missing,
                )
            )
        return [known[rank] for rank in ranks]

    async def _exists(self, db: Reader, expression: str, filters: _Filters) -> bool:
        found = await db.row(
            f"SELECT 1 FROM {self._text_from(filters)}{filters.sql} LIMIT 1",
            (expression, *filters.params),
        )
        return found is not None

    def _count_cap(self, filters: _Filters) -> int:
        cap = self.settings.max_exact_total
        return min(cap, FILTERED_COUNT_CAP) if filters.sql else cap

    def _capped(self, total: int, filters: _Filters) -> tuple[int, bool]:
        """``(total, exact)`` under the same cap ``_count`` uses, whichever way it was found."""
        cap = self._count_cap(filters)
        return (cap, False) if total > cap else (total, True)

    async def _count(self, db: Reader, expression: str, filters: _Filters) -> tuple[int, bool]:
        # Without filters the count reads only the title index. With them each
        # match costs a movies lookup, and a selective filter over a broad text
        # ("the" in 1970-1972) may read tens of thousands to find the cap.
        cap = self._count_cap(filters)
        total = await self._count_up_to(db, expression, filters, cap + 1)
        return (cap, False) if total > cap else (total, True)

    async def _count_up_to(self, db: Reader, expression: str, filters: _Filters, limit: int) -> int:
        """How many titles match, counted no further than ``limit``."""
        found = await db.row(
            f"SELECT count(*) FROM (SELECT 1 FROM {self._text_from(filters)}"
            f"{filters.sql} LIMIT ?) AS matches",
            (expression, *filters.params, limit),
        )
        assert found is not None
        return int(found[0])

    async def _sorted_text_page(
        self,
        db: Reader,
        snapshot: CatalogSnapshot,
        query: SearchQuery,
        filters: _Filters,
        plan: QueryPlan,
        *,
        count: bool = True,
    ) -> _Page:
        """The same result set as relevance order, sorted by a column instead."""
        match = await self._resolve_words(db, snapshot, query, filters, plan)
        expression = match.plain
        total, exact = await self._count(db, expression, filters)
        if await self._typos_join(db, match, filters, total, exact):
            assert match.with_typos is not None
            expression = match.with_typos
            total, exact = await self._count(db, expression, filters)
        rows = await db.rows(
            f"SELECT {COLUMNS} FROM {self._text}{filters.sql} "
            f"ORDER BY {SORT_SQL[query.sort]} LIMIT ? OFFSET ?",
            (expression, *filters.params, query.limit, query.offset),
        )
        typo_ranks: frozenset[int] = frozenset()
        if expression is not match.plain:
            typo_ranks = frozenset(await self._typo_only_ranks(db, match.plain, rows))
        return _Page(rows, total, exact, expression, match, typo_ranks)

    async def _typo_only_ranks(self, db: Reader, expression: str, rows: list[Row]) -> set[int]:
        """The ranks of ``rows`` that do NOT match ``expression`` (found through typos)."""
        ranks = [row[SEARCH_RANK] for row in rows]
        if not ranks:
            return set()
        marks = ",".join("?" * len(ranks))
        found = await db.rows(
            f"SELECT {self.dialect.text_rank} FROM {self._text} AND m.search_rank IN ({marks})",
            (expression, *ranks),
        )
        return set(ranks) - {row[0] for row in found}

    async def _browse(
        self, db: Reader, snapshot: CatalogSnapshot, query: SearchQuery, filters: _Filters
    ) -> tuple[list[Row], int, bool]:
        """No words: filters only, in the requested order, read through an index."""
        where = f"WHERE TRUE{filters.sql}"
        if filters.sql:
            cap = self.settings.max_exact_total
            found = await db.row(
                f"SELECT count(*) FROM (SELECT 1 FROM movies AS m {where} LIMIT ?) AS matches",
                (*filters.params, cap + 1),
            )
            assert found is not None
            total, exact = min(int(found[0]), cap), found[0] <= cap
        else:
            total, exact = snapshot.movie_count, True
        column = NULLABLE_SORTS.get(query.sort)
        if column is None:
            rows = await db.rows(
                f"SELECT {COLUMNS} FROM movies AS m {where} "
                f"ORDER BY {SORT_SQL[query.sort]} LIMIT ? OFFSET ?",
                (*filters.params, query.limit, query.offset),
            )
            return rows, total, exact
        # Titles without the sort value come last. Two index walks, because
        # "ORDER BY year IS NULL, year" can't be read from the (year, rank) index.
        direction = "DESC" if query.sort.startswith("-") else ""
        rows = await db.rows(
            f"SELECT {COLUMNS} FROM movies AS m {where} AND m.{column} IS NOT NULL "
            f"ORDER BY m.{column} {direction}, m.search_rank LIMIT ? OFFSET ?",
            (*filters.params, query.limit, query.offset),
        )
        if len(rows) < query.limit:
            valued = await db.row(
                f"SELECT count(*) FROM movies AS m {where} AND m.{column} IS NOT NULL",
                filters.params,
            )
            assert valued is not None
            rows += await db.rows(
                f"SELECT {COLUMNS} FROM movies AS m {where} AND m.{column} IS NULL "
                "ORDER BY m.search_rank LIMIT ? OFFSET ?",
                (*filters.params, query.limit - len(rows), max(query.offset - valued[0], 0)),
            )
        return rows, total, exact

    # -- facets --------------------------------------------------------------

    async def _facets(
        self,
        db: Reader,
        snapshot: CatalogSnapshot,
        query: SearchQuery,
        filters: _Filters,
        matched: str | None,
    ) -> dict[str, dict[str, int]]:
        if matched is None and not filters.sql:
            return {name: snapshot.catalog_facets[name] for name in query.facets}
        params: tuple[Any, ...]
        if matched is None:
            source, params = f"movies AS m WHERE TRUE{filters.sql}", filters.params
        else:
            source, params = f"{self._text}{filters.sql}", (matched, *filters.params)
        facets: dict[str, dict[str, int]] = {}
        if "genres" in query.facets:
            names = [(bit, name) for bit, name in sorted(snapshot.genres.values())]
            add_up = self.dialect.facet_sum.format
            sums = ", ".join(add_up(f"(m.genre_mask >> {bit}) & 1") for bit, _ in names) or "0"
            counts = await db.row(f"SELECT {sums} FROM {source}", params)
            assert counts is not None
            pairs = [(name, int(n)) for (_, name), n in zip(names, counts, strict=False) if n]
            facets["genres"] = dict(sorted(pairs, key=lambda pair: (-pair[1], pair[0])))
        if "decade" in query.facets:
            facets["decade"] = {
                str(decade): n
                for decade, n in await db.rows(
                    f"SELECT m.year / 10 * 10 AS decade, count(*) FROM {source} "
                    "AND m.year IS NOT NULL GROUP BY decade ORDER BY decade",
                    params,
                )
            }
        return facets
