"""The search algorithm, written once for every SQL backend: the orchestration.

Relevance is a short list of tiers, each filled in popularity order:

1. the title is exactly the query's words (as typed first, then in any order);
2. the words side by side as typed, at the start of the title, then anywhere;
3. a finished last word as itself, before its completions;
4. every word as typed (the last one as a prefix while typing);
5. every word, some through a typo, only when fewer than TYPO_THRESHOLD
   titles match as typed; titles with no words beyond the query's first.

The parts, one module each: ``plan.py`` (words -> slots), ``matching.py``
(slots -> index expressions, and a title back to its tier: ``assessment.py``),
``filters.py``, ``pages.py`` (relevance pages: ``as_typed.py`` the tiers as typed,
``rank_sets.py`` their sets from ``postings.py``), ``sorted_pages.py`` (pages in a
column's order, and browsing), ``counting.py`` (the text-match
statements), ``facets.py``, ``annotate.py`` (highlights, explain) and
``sql.py`` (what differs between SQLite's FTS5 and PostgreSQL's tsvector).
The engines (``sqlite.py``, ``postgres.py``) only open connections and hold
the catalog snapshot.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from time import perf_counter

from reelsearch.config import Settings
from reelsearch.search.annotate import annotate
from reelsearch.search.counting import TextStatements
from reelsearch.search.engine import Hit, SearchResult
from reelsearch.search.facets import count_facets
from reelsearch.search.filters import Filters, build_filters, with_year
from reelsearch.search.held import hold_plan
from reelsearch.search.pages import TextPages
from reelsearch.search.plan import QueryPlan, plan_query
from reelsearch.search.query import MOVIE_FIELDS, SearchQuery
from reelsearch.search.readers import Reader
from reelsearch.search.rows import COLUMNS, SOURCE_KEY, Page, row_to_hit
from reelsearch.search.rulebook import RuleFiles
from reelsearch.search.snapshot import CatalogSnapshot
from reelsearch.search.sorted_pages import browse, sorted_text_page
from reelsearch.search.sql import Dialect
from reelsearch.search.timing import SearchStages, stage_sink

# Plans kept per engine: a plan is a few small tuples, the recurring queries
# (popular titles, the prefixes typed on the way to them) fit many times over.
PLAN_CACHE_SIZE = 4096


class TieredSearch:
    """Search, autocomplete and movie details on one backend's SQL dialect.

    Holds no connection: each call gets a ``Reader`` for one request's
    connection, and the engine's current ``CatalogSnapshot``.
    """

    def __init__(self, settings: Settings, dialect: Dialect) -> None:
        self.settings = settings
        self.dialect = dialect
        self.syntax = dialect.syntax
        self.rules = RuleFiles(
            settings.synonyms_path, settings.stopwords_path, settings.catalog_poll_seconds
        )

        self._plans: OrderedDict[tuple[object, ...], QueryPlan] = OrderedDict()
        self.statements = TextStatements(settings, dialect)
        self.pages = TextPages(self.statements, self.plan)

    def plan(self, snapshot: CatalogSnapshot, query: SearchQuery) -> QueryPlan:
        """The query's plan, from the LRU when these words were planned on this catalog
        and rules version (popular queries and their prefixes recur)."""
        rules = self.rules.current()
        key = (snapshot.version, id(rules), query.words, query.quoted, query.last_is_prefix,
               query.excluded)  # fmt: skip
        plans = self._plans
        plan = plans.get(key)
        if plan is None:
            # Out of the collector's view while the LRU keeps it (search/held.py).
            plan = hold_plan(plan_query(query, rules, snapshot.vocabulary, snapshot.typos))
            plans[key] = plan
            if len(plans) > PLAN_CACHE_SIZE:
                del plans[next(iter(plans))]
        else:
            plans.move_to_end(key)
        return plan

    # -- reads ---------------------------------------------------------------

    async def get_movie(self, db: Reader, movie_id: int | str) -> Hit | None:
        """The movie with this catalog id, or this source key (str: "imdb:tt0133093")."""
        key = "source_key" if isinstance(movie_id, str) else "id"
        row = await db.row(
            f"SELECT {COLUMNS}, m.original_title, m.updated_at FROM movies AS m WHERE m.{key} = ?",
            (movie_id,),
        )
        if row is None:
            return None
        movie_id = row[0]
        movie = row_to_hit(row, MOVIE_FIELDS)
        movie["original_title"] = row[SOURCE_KEY + 1]
        movie["updated_at"] = row[SOURCE_KEY + 2]
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
        started, stages = perf_counter(), SearchStages()
        fields = ("id", "title", "year")
        page = await self._text_page(db, snapshot, query, Filters("", ()), stages, count=False)
        hits = [row_to_hit(row, fields) for row in page.rows]
        _report(stages, started, db, 0.0)
        return hits

    async def search(
        self, db: Reader, snapshot: CatalogSnapshot, query: SearchQuery
    ) -> SearchResult:
        started, stages = perf_counter(), SearchStages()
        filters = build_filters(snapshot, query, text=bool(query.words))
        if not query.words:
            page = Page(*await browse(self.statements, db, snapshot, query, filters))
        else:
            page = await self._text_page(db, snapshot, query, filters, stages)
            filters = page.filters or filters
        facets = None
        facets_database = 0.0
        if query.facets:
            counting, before = perf_counter(), db.seconds
            facets = await count_facets(self.statements, db, snapshot, query, filters, page.matched)
            stages.facets = perf_counter() - counting
            facets_database = db.seconds - before
        fields = query.fields
        hits = [row_to_hit(row, fields) for row in page.rows]
        match = page.match
        if match is not None and (
            query.explain or "highlights" in fields or "matched_title" in fields
        ):
            await annotate(db, query, page, hits)
        result = SearchResult(
            hits,
            page.total,
            page.exact,
            facets,
            query.next_cursor(page.total, page.exact, len(page.rows)),
            match.planned_words == len(query.words) if match is not None else None,
        )
        _report(stages, started, db, facets_database)
        return result

    async def _text_page(
        self,
        db: Reader,
        snapshot: CatalogSnapshot,
        query: SearchQuery,
        filters: Filters,
        stages: SearchStages,
        *,
        count: bool = True,
    ) -> Page:
        """The page of a text search in the order asked for.

        A year among the words first narrows to that year (or titles saying
        it); if nothing is left, the year is read as a plain word again.
        """
        planning = perf_counter()
        plan = self.plan(snapshot, query)
        match = self.pages.match(snapshot, plan)  # built here, so the plan stage holds it
        stages.plan = perf_counter() - planning
        if match.contradicts_itself:  # "matrix -matrix": no title can match (facets neither)
            return Page([], 0, True, match.plain, match, filters=filters)
        pages = self.pages
        read = (
            pages.relevance_page if query.sort == "relevance" else partial(sorted_text_page, pages)
        )
        if plan.year is not None:
            narrowed = with_year(filters, plan.year)
            page = await read(db, snapshot, query, narrowed, plan, count=count)
            if page.rows or page.total:
                page.filters = narrowed
                return page
            plan = plan.without_year()
        page = await read(db, snapshot, query, filters, plan, count=count)
        page.filters = filters
        return page


def _report(stages: SearchStages, started: float, db: Reader, facets_database: float) -> None:
    """Close the search's stages (ranking is what the others leave) and hand them
    to the sink of this context, if one listens."""
    sink = stage_sink()
    if sink is None:
        return
    stages.database = db.seconds - facets_database
    stages.ranking = max(
        perf_counter() - started - stages.plan - stages.database - (stages.facets or 0.0), 0.0
    )
    sink(stages)
