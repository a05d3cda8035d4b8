"""Every SQL shape the search engine runs uses an index: no full scan of ``movies``.

SQLite: the engine's statements are captured on its (single) pooled
connection with ``sqlite3.Connection.set_trace_callback`` while it serves a
representative set of requests on the real sample, then each is run through
EXPLAIN QUERY PLAN.

PostgreSQL: the same requests run through a Reader that records each
statement with its parameters, then each runs through EXPLAIN with
``enable_seqscan = off``: the planner then picks a sequential scan of movies
only when no index can serve the statement at all, which is the bug this
catches. (On the 58 k-title sample a sequential scan may honestly be cheaper
for broad queries; plans and timings at 1 M titles are in bench/RESULTS.md.)
"""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from typing import Any

import asyncpg
import orjson
import pytest

from reelsearch.config import Settings
from reelsearch.db.explain import explain_query_plan, full_scans
from reelsearch.search.backends import open_blocking_engine
from reelsearch.search.engine import BlockingSearchEngine
from reelsearch.search.postgres import PostgresSearchEngine
from reelsearch.search.postings import POSTINGS_MAX_MOVIES
from reelsearch.search.postings_store import TITLES_SQL
from reelsearch.search.query import parse_autocomplete, parse_search
from reelsearch.search.readers import PostgresReader, RecordingReader, Statement, numbered
from reelsearch.search.snapshot import CatalogSnapshot, read_catalog_facts
from reelsearch.search.sql import POSTGRESQL
from reelsearch.search.sqlite import SqliteSearchEngine

# The planner names the alias of `movies AS m`, so both names are checked.
MOVIES_NAMES = ("movies", "m")

SEARCHES: dict[str, list[tuple[str, str]]] = {
    "text-relevance": [("q", "star wars")],
    "text-prefix-common": [("q", "the")],
    "text-typo": [("q", "matirx")],
    "text-relaxed": [("q", "matrix qqqqzz")],
    "text-deep-page": [("q", "love"), ("offset", "200"), ("limit", "100")],
    "text+year": [("q", "love"), ("year_from", "1990"), ("year_to", "1999")],
    "text+genres-any": [("q", "love"), ("genres", "Comedy,Drama")],
    "text+genres-all": [("q", "love"), ("genres", "Comedy,Romance"), ("genres_mode", "all")],
    "text+min_rating": [("q", "love"), ("min_rating", "8")],
    "text+min_votes": [("q", "love"), ("min_votes", "1000")],
    "text+kind": [("q", "love"), ("kind", "movie")],
    "text+all-filters": [("q", "the"), ("year_from", "1950"), ("genres", "Drama"),
                         ("min_rating", "6"), ("min_votes", "10"), ("kind", "movie")],
    "text+sort-year": [("q", "love"), ("sort", "year")],
    "text+sort--year": [("q", "love"), ("sort", "-year")],
    "text+sort-rating": [("q", "love"), ("sort", "rating")],
    "text+sort--rating": [("q", "star"), ("sort", "-rating")],
    "text+sort-votes": [("q", "star"), ("sort", "votes")],
    "text+sort--votes": [("q", "the"), ("sort", "-votes"), ("genres", "Action")],
    "text+sort-typo": [("q", "matirx"), ("sort", "-year")],
    "text+facets": [("q", "love"), ("facets", "genres,decade")],
    "text+filter+facets": [("q", "love"), ("min_votes", "100"), ("facets", "genres,decade")],
    "text+typo+facets": [("q", "matirx"), ("facets", "genres,decade")],
    "browse-all": [],
    "browse-all+facets": [("facets", "genres,decade")],
    "browse-genre": [("genres", "Animation")],
    "browse-genres-any": [("genres", "Animation,Documentary")],
    "browse-genres-all": [("genres", "Comedy,Romance"), ("genres_mode", "all")],
    "browse-year": [("year_from", "1990"), ("year_to", "1995")],
    "browse-year-from": [("year_from", "2000")],
    "browse-year-to": [("year_to", "1920")],
    "browse-rating": [("min_rating", "9")],
    "browse-votes": [("min_votes", "10000")],
    "browse-kind": [("kind", "movie")],
    "browse-sort-year": [("sort", "year")],
    "browse-sort--year": [("sort", "-year")],
    "browse-sort-rating": [("sort", "rating")],
    "browse-sort--rating": [("sort", "-rating")],
    "browse-sort-votes": [("sort", "votes")],
    "browse-sort--votes": [("sort", "-votes")],
    "browse-genre+sort-year": [("genres", "Drama"), ("sort", "-year")],
    "browse-year+sort-rating": [("year_from", "1990"), ("sort", "-rating")],
    "browse-genre+facets": [("genres", "Animation"), ("facets", "genres,decade")],
    "browse-rating+facets": [("min_rating", "8"), ("facets", "genres,decade")],
    "browse-kind+facets": [("kind", "movie"), ("facets", "decade")],
    "browse-deep-page": [("genres", "Drama"), ("offset", "5000")],
}  # fmt: skip


def sqlite_engine(engine: BlockingSearchEngine) -> SqliteSearchEngine:
    """The SQLite engine a blocking engine drives (its pool and settings)."""
    inner = engine.engine
    assert isinstance(inner, SqliteSearchEngine)
    return inner


@pytest.fixture(scope="module")
def traced(sample_settings: Settings) -> Iterator[tuple[BlockingSearchEngine, list[str]]]:
    """An engine with one pooled connection whose every statement is recorded
    (``plans_of`` traces the pool's connection before each call). Its snapshot has
    no mapped hit rows (search/hit_rows.py): a page's rows are read by the statement
    a catalog without them (or written past their change records) reads, and
    that statement is checked too; with them a plain text search reads nothing
    (tests/search/test_hit_rows.py)."""
    statements: list[str] = []
    settings = Settings(database_url=sample_settings.database_url, db_read_pool_size=1)
    engine = open_blocking_engine(settings)
    inner = sqlite_engine(engine)
    inner.snapshot = replace(inner.snapshot, hit_rows=None)
    yield engine, statements
    engine.close()


def plans_of(
    traced: tuple[BlockingSearchEngine, list[str]],
    run: Callable[[BlockingSearchEngine], Any],
    *,
    may_read_nothing: bool = False,
) -> list[tuple[str, list[str]]]:
    """The SELECTs ``run`` made the engine execute, each with its query plan (at least
    one, unless ``may_read_nothing``)."""
    engine, statements = traced
    # The pool's only connection, used by the call. Traced anew each time: a
    # connection on which a slow statement was interrupted is replaced by a fresh one.
    with sqlite_engine(engine).pool.connection() as conn:
        conn.set_trace_callback(statements.append)
    statements.clear()
    run(engine)
    selects = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert selects or may_read_nothing, "the trace callback saw no SELECT"
    conn = sqlite3.connect(f"file:{sqlite_engine(engine).settings.sqlite_path}?mode=ro", uri=True)
    try:
        return [(s, explain_query_plan(conn, s)) for s in selects]
    finally:
        conn.close()


def assert_no_full_scan(plans: list[tuple[str, list[str]]]) -> None:
    offending = [
        f"{statement}\n    " + "\n    ".join(plan)
        for statement, plan in plans
        if any(full_scans(plan, name) for name in MOVIES_NAMES)
    ]
    assert [] == offending, "full scan of movies:\n" + "\n\n".join(offending)


@pytest.mark.parametrize("params", list(SEARCHES.values()), ids=list(SEARCHES))
def test_search_never_scans_movies(
    traced: tuple[BlockingSearchEngine, list[str]], params: list[tuple[str, str]]
) -> None:
    """Each search shape reads movies through an index, never a full table scan."""
    assert_no_full_scan(plans_of(traced, lambda engine: engine.search(parse_search(params))))


@pytest.mark.parametrize("q", ["the mat", "matirx", "love story ", "zzzzqq", "gladiatr"])
def test_autocomplete_never_scans_movies(
    traced: tuple[BlockingSearchEngine, list[str]], q: str
) -> None:
    """Autocomplete reads movies through an index; a word no title holds ("zzzzqq") is
    answered from the title postings (search/postings.py) without reading movies."""
    query = parse_autocomplete([("q", q), ("limit", "5")])
    nothing = q == "zzzzqq"
    plans = plans_of(traced, lambda engine: engine.autocomplete(query), may_read_nothing=nothing)
    assert_no_full_scan(plans)
    if nothing:
        assert [] == plans


def test_get_movie_never_scans_movies(traced: tuple[BlockingSearchEngine, list[str]]) -> None:
    """Looking a movie up by id is a primary-key search."""
    plans = plans_of(traced, lambda engine: engine.get_movie(32710))
    assert_no_full_scan(plans)
    assert any("USING INTEGER PRIMARY KEY" in line for _, plan in plans for line in plan)


def test_catalog_snapshot_load_never_scans_movies(
    traced: tuple[BlockingSearchEngine, list[str]],
) -> None:
    """Loading a catalog version (startup, after each import) reads movies through
    indexes only, title postings included: they are mapped from the file the import
    stored (search/stored_postings.py), not built from every title."""
    loaded: list[CatalogSnapshot] = []

    def load(engine: BlockingSearchEngine) -> None:
        with sqlite_engine(engine).pool.connection() as conn:
            loaded.append(CatalogSnapshot.load(conn, postings_max_movies=POSTINGS_MAX_MOVIES))

    plans = plans_of(traced, load)
    assert [] == [statement for statement, _ in plans if statement == TITLES_SQL]
    assert_no_full_scan(plans)
    assert loaded[0].postings is not None


def test_full_scans_helper_sees_a_scan() -> None:
    """The check itself works: a plan line 'SCAN m' is a full scan, an index scan is not."""
    plan = ["SCAN m", "SCAN m USING INDEX ix_movies_search_rank", "SEARCH m USING INDEX x (a=?)"]
    assert ["SCAN m"] == full_scans(plan, "m")
    assert ["SCAN movies"] == full_scans(["SCAN movies"], "movies")
    assert [] == full_scans(plan, "movies")


# -- PostgreSQL ------------------------------------------------------------


class Explainer:
    """Runs engine calls on one connection and explains what they executed."""

    def __init__(self, settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        # Without title postings: the statements explained are the title index's own,
        # which the postings answer in memory for small matches (0037).
        self.engine = self.loop.run_until_complete(
            PostgresSearchEngine.open(replace(settings, title_postings_max_movies=0))
        )
        self.conn: asyncpg.Connection = self.loop.run_until_complete(
            asyncpg.connect(settings.postgres_dsn)
        )
        self.loop.run_until_complete(self.conn.execute("SET enable_seqscan = off"))
        self.tiered = self.engine.tiered

    def plans(
        self, call: Callable[[RecordingReader], Awaitable[Any]]
    ) -> list[tuple[str, list[dict[str, Any]]]]:
        seen: list[Statement] = []
        self.loop.run_until_complete(call(RecordingReader(PostgresReader(self.conn), seen)))
        assert seen, "the engine ran no statement"
        return [
            (sql, self.loop.run_until_complete(self._explain(sql, params))) for sql, params in seen
        ]

    async def _explain(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        raw = await self.conn.fetchval("EXPLAIN (FORMAT JSON) " + numbered(sql), *params)
        return orjson.loads(raw)  # type: ignore[no-any-return]

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.run_until_complete(self.engine.close())
        self.loop.close()


def plan_nodes(plan: Any) -> Iterator[dict[str, Any]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan tree."""
    if isinstance(plan, list):
        for item in plan:
            yield from plan_nodes(item)
    elif isinstance(plan, dict):
        if "Node Type" in plan:
            yield plan
        for key in ("Plan", "Plans"):
            if key in plan:
                yield from plan_nodes(plan[key])


def movie_seq_scans(plan: Any) -> list[dict[str, Any]]:
    return [
        node for node in plan_nodes(plan)
        if node["Node Type"] == "Seq Scan" and node.get("Relation Name") == "movies"
    ]  # fmt: skip


def assert_no_seq_scan(plans: list[tuple[str, list[dict[str, Any]]]]) -> None:
    offending = [sql for sql, plan in plans if movie_seq_scans(plan)]
    assert [] == offending, "sequential scan of movies:\n" + "\n\n".join(offending)


@pytest.fixture(scope="module")
def explainer(sample_pg_settings: Settings) -> Iterator[Explainer]:
    explainer = Explainer(sample_pg_settings)
    yield explainer
    explainer.close()


@pytest.mark.postgres
@pytest.mark.parametrize("params", list(SEARCHES.values()), ids=list(SEARCHES))
def test_search_never_seq_scans_movies(explainer: Explainer, params: list[tuple[str, str]]) -> None:
    """Each search shape can read movies through an index."""
    snapshot = explainer.engine.snapshot
    query = parse_search(params)
    assert_no_seq_scan(explainer.plans(lambda db: explainer.tiered.search(db, snapshot, query)))


@pytest.mark.postgres
@pytest.mark.parametrize("q", ["the mat", "matirx", "love story ", "zzzzqq"])
def test_autocomplete_never_seq_scans_movies(explainer: Explainer, q: str) -> None:
    """Autocomplete reads movies through an index."""
    snapshot = explainer.engine.snapshot
    query = parse_autocomplete([("q", q), ("limit", "5")])
    assert_no_seq_scan(
        explainer.plans(lambda db: explainer.tiered.autocomplete(db, snapshot, query))
    )


@pytest.mark.postgres
def test_get_movie_uses_the_primary_key(explainer: Explainer) -> None:
    """Looking a movie up by id is a primary-key index scan."""
    plans = explainer.plans(lambda db: explainer.tiered.get_movie(db, 32710))
    assert_no_seq_scan(plans)
    indexes = {node.get("Index Name") for _, plan in plans for node in plan_nodes(plan)}
    assert "movies_pkey" in indexes


@pytest.mark.postgres
def test_snapshot_load_never_seq_scans_movies(explainer: Explainer) -> None:
    """Loading a catalog version reads movies through indexes."""
    assert_no_seq_scan(explainer.plans(lambda db: read_catalog_facts(db, POSTGRESQL)))


@pytest.mark.postgres
def test_seq_scan_check_sees_a_seq_scan(explainer: Explainer) -> None:
    """The check itself works: a statement no index serves shows up as a sequential scan."""
    plans = explainer.plans(lambda db: db.rows("SELECT id FROM movies WHERE runtime_min = 90"))
    assert 1 == len(movie_seq_scans(plans[0][1]))
