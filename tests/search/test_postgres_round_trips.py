"""A search on PostgreSQL is one round trip, and that one statement answers exactly
what the algorithm's own statements would.

The engine sends one statement per relevance page (``search/postgres_page.py``)
and the algorithm reads its answers through a ``ReplayReader``. These tests
count the statements that reach the real server (asyncpg's query logger on
the pool's connections), compare every answer and every result with the
statement-by-statement way on the real sample, and EXPLAIN the one statement
with ``enable_seqscan = off`` as ``test_explain.py`` does the others.
"""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import asyncpg
import orjson
import pytest
from one_statement_check import one_statement_and_direct

from reelsearch.config import Settings
from reelsearch.db.timing import query_shape
from reelsearch.search.postgres import PostgresSearchEngine
from reelsearch.search.query import SearchQuery, parse_autocomplete, parse_search
from reelsearch.search.readers import PostgresReader, RecordingReader, Statement, numbered

pytestmark = pytest.mark.postgres

# The most statements a plain search (words, maybe filters, relevance order, no
# facets) may send. Raise it only with a reason: each one is a round trip and a plan.
MAX_ROUND_TRIPS = 1
# Title postings off: the sample's small matches would be answered from them (one read
# of the page's rows, tests/search/test_postgres_postings.py), and these tests are of the
# one statement (which serves broad and filtered matches, and catalogs past the cap).
STATEMENT_ONLY = 0
# How a connection switches between generic and custom plans (db/postgres.py).
PLAN_MODE_SWITCH = "SET plan_cache_mode"

# Plain searches of every kind the bench set holds, on the sample: known items,
# prefixes while typing, typos (one word, and words after which nothing matches),
# filters, broad words and deep pages.
PLAIN_SEARCHES: dict[str, list[tuple[str, str]]] = {
    "exact": [("q", "the matrix")],
    "exact-one-word": [("q", "casablanca")],
    "word-order": [("q", "wars star")],
    "prefix": [("q", "the godf")],
    "prefix-short": [("q", "lo")],
    "broad-word": [("q", "love")],
    "broad-stop-word": [("q", "the")],
    "broad-phrase": [("q", "the last")],
    "typo": [("q", "matirx")],
    "typo-first-word": [("q", "godfahter part")],
    "stop-words": [("q", "la pete")],
    "filtered": [("q", "star"), ("year_from", "1970"), ("year_to", "1989")],
    "filtered-genre": [("q", "love"), ("genres", "Comedy,Drama")],
    "filtered-votes": [("q", "night"), ("min_votes", "1000"), ("kind", "movie")],
    "year-typed": [("q", "king kong 1933")],
    "deep-page": [("q", "love"), ("offset", "200"), ("limit", "100")],
    "second-page": [("q", "star"), ("offset", "10")],
    "nothing": [("q", "zzzzqqq")],
}
# Every read of these is checked against the statement's own answer.
CHECKED_SEARCHES: dict[str, list[tuple[str, str]]] = {
    **PLAIN_SEARCHES,
    "trailing-garbage": [("q", "matrix qqqqzz")],
    "many-words": [("q", "dr strangelove or how i learned to stop worrying")],
    "excluded": [("q", "star -wars")],
    "quoted": [("q", '"the last"')],
    "with-facets": [("q", "love"), ("facets", "genres,decade")],
    "sorted": [("q", "love"), ("sort", "-year")],
}


class Server:
    """The engine on the sample, on a loop of its own, with its statements logged."""

    def __init__(self, settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.engine: PostgresSearchEngine = self.loop.run_until_complete(
            PostgresSearchEngine.open(settings)
        )
        self.statements: list[str] = []
        self.loop.run_until_complete(self._log_every_connection(settings))
        self.conn: asyncpg.Connection = self.loop.run_until_complete(
            asyncpg.connect(settings.postgres_dsn)
        )

    async def _log_every_connection(self, settings: Settings) -> None:
        """Check out every connection the pool may open at once, and log what each runs."""
        self.slots = settings.db_pool_size + settings.db_max_overflow
        checkouts = [self.engine.pool.connection() for _ in range(self.slots)]
        for checkout in checkouts:
            conn = await checkout.__aenter__()
            conn.add_query_logger(lambda record: self.statements.append(record.query))
        for checkout in checkouts:
            await checkout.__aexit__(None, None, None)

    async def _run_generic_plans(self) -> None:
        """Leave every connection running generic plans, as a relevance search leaves
        the one it used: the switch is once per connection, not per search (0022)."""
        checkouts = [self.engine.pool.connection(generic_plans=True) for _ in range(self.slots)]
        for checkout in checkouts:
            await checkout.__aenter__()
        for checkout in checkouts:
            await checkout.__aexit__(None, None, None)

    def round_trips(
        self, query: SearchQuery, *, autocomplete: bool = False, mode_switches: bool = False
    ) -> list[str]:
        """The statements the search sent. ``mode_switches``: from connections that
        run generic plans, and with the plan mode switches; else without them."""
        if mode_switches:
            self.run(self._run_generic_plans())
        self.statements.clear()
        engine = self.engine
        call = engine.autocomplete(query) if autocomplete else engine.search(query)
        self.loop.run_until_complete(call)
        if mode_switches:
            return list(self.statements)
        return [sql for sql in self.statements if not sql.startswith(PLAN_MODE_SWITCH)]

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        self.run(self.conn.close())
        self.run(self.engine.close())
        self.loop.close()


@pytest.fixture(scope="module")
def server(sample_pg_settings: Settings) -> Iterator[Server]:
    server = Server(replace(sample_pg_settings, title_postings_max_movies=STATEMENT_ONLY))
    yield server
    server.close()


@pytest.mark.parametrize("params", list(PLAIN_SEARCHES.values()), ids=list(PLAIN_SEARCHES))
def test_a_plain_search_is_one_round_trip(server: Server, params: list[tuple[str, str]]) -> None:
    """Words, filters, relevance order: one statement reaches the server, however the
    words match (known item, prefix, typo, broad word, nothing)."""
    statements = server.round_trips(parse_search(params), mode_switches=True)
    assert len(statements) <= MAX_ROUND_TRIPS, "\n\n".join(statements)


def test_a_search_that_drops_a_word_is_two_round_trips(server: Server) -> None:
    """When no title has every word, even through typos, the algorithm falls back to
    the first words that match: their page is a second statement, found from the
    first one's answers, however many words are dropped."""
    for q in ("star wras", "matrix qqqqzz", "casablanca qqqq zzzz"):
        statements = server.round_trips(parse_search([("q", q)]))
        assert len(statements) <= 2, f"{q}:\n" + "\n\n".join(statements)


@pytest.mark.parametrize("q", ["the mat", "matirx", "love story ", "zzzzqq"])
def test_autocomplete_is_one_round_trip(server: Server, q: str) -> None:
    """Autocomplete reads its suggestions in one statement too."""
    query = parse_autocomplete([("q", q), ("limit", "5")])
    assert 1 == len(server.round_trips(query, autocomplete=True))


def test_the_round_trip_count_sees_every_statement(server: Server) -> None:
    """The count itself works: a search with facets sends its facet read too (genres
    and decades in one pass, search/facets.py): the page's statement and the facets'."""
    query = parse_search([("q", "love"), ("facets", "genres,decade")])
    assert 2 == len(server.round_trips(query))


@pytest.mark.parametrize("params", list(CHECKED_SEARCHES.values()), ids=list(CHECKED_SEARCHES))
def test_every_answer_is_the_statements_own(server: Server, params: list[tuple[str, str]]) -> None:
    """Each read the one statement answers gets the rows its own statement returns,
    and the search finds what it finds statement by statement."""
    query = parse_search(params)
    replayed, expected, checking = server.run(
        one_statement_and_direct(server.engine, server.conn, query)
    )
    assert [] == checking.differing
    assert expected == replayed
    if params in PLAIN_SEARCHES.values() and params[0][1] != "zzzzqqq":
        assert checking.answered > 0


@pytest.mark.parametrize("params", list(CHECKED_SEARCHES.values()), ids=list(CHECKED_SEARCHES))
def test_the_one_statement_never_seq_scans_movies(
    server: Server, params: list[tuple[str, str]]
) -> None:
    """The one statement reads movies through its indexes, whichever way it walks."""
    captured: list[Statement] = []
    engine, query = server.engine, parse_search(params)

    async def explain() -> list[Any]:
        await engine.read_page(
            RecordingReader(PostgresReader(server.conn), captured),
            engine.snapshot,
            query,
            count=True,
        )
        if not captured:
            return []
        await server.conn.execute("SET enable_seqscan = off")
        try:
            sql, values = captured[0]
            raw = await server.conn.fetchval("EXPLAIN (FORMAT JSON) " + numbered(sql), *values)
        finally:
            await server.conn.execute("RESET enable_seqscan")
        return orjson.loads(raw)  # type: ignore[no-any-return]

    plan = server.run(explain())
    scans = [node for node in _nodes(plan) if node["Node Type"] == "Seq Scan"]
    assert [] == [node.get("Relation Name") for node in scans if node.get("Relation Name")]


# Searches whose words are rare (read through GIN) with filters that have indexes
# of their own (year, kind, votes, rating).
FILTERED_GIN_SEARCHES: dict[str, list[tuple[str, str]]] = {
    "year-range": [("q", "casablanca"), ("year_from", "1940"), ("year_to", "1950")],
    "typo-kind": [("q", "matirx"), ("kind", "movie")],
    "votes-rating": [("q", "godfather"), ("min_votes", "1000"), ("min_rating", "5")],
}


@pytest.mark.parametrize(
    "params", list(FILTERED_GIN_SEARCHES.values()), ids=list(FILTERED_GIN_SEARCHES)
)
def test_the_generic_plan_reads_gin_alone_under_filters(
    server: Server, params: list[tuple[str, str]]
) -> None:
    """In the one statement's generic plan (0022) a match read through GIN is not ANDed
    with a filter's own index (which holds thousands of titles where GIN finds a few):
    GIN's bitmap alone, the filters tested on its rows (0026)."""
    captured: list[Statement] = []
    engine, query = server.engine, parse_search(params)

    async def explain_generic() -> list[Any]:
        await engine.read_page(
            RecordingReader(PostgresReader(server.conn), captured),
            engine.snapshot,
            query,
            count=True,
        )
        sql, values = captured[0]
        conn = server.conn
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await conn.execute(f"PREPARE gin_alone AS {numbered(sql)}")
        try:
            literals = ", ".join(_literal(value) for value in values)
            raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE gin_alone({literals})")
        finally:
            await conn.execute("DEALLOCATE gin_alone")
            await conn.execute("RESET plan_cache_mode")
        return orjson.loads(raw)  # type: ignore[no-any-return]

    nodes = list(_nodes(server.run(explain_generic())))
    bitmaps = [node.get("Index Name") for node in nodes if node["Node Type"] == "Bitmap Index Scan"]
    assert "ix_movies_title_tsv" in bitmaps  # the statement does read through GIN
    assert {"ix_movies_title_tsv"} == set(bitmaps)
    assert [] == [node for node in nodes if node["Node Type"] == "BitmapAnd"]


def _literal(value: Any) -> str:
    """A parameter as an SQL literal (EXECUTE takes no bound parameters)."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def _nodes(plan: Any) -> Iterator[dict[str, Any]]:
    if isinstance(plan, list):
        for item in plan:
            yield from _nodes(item)
    elif isinstance(plan, dict):
        if "Node Type" in plan:
            yield plan
        for key in ("Plan", "Plans"):
            if key in plan:
                yield from _nodes(plan[key])


@pytest.mark.parametrize("q", ["love", "the matrix", "matirx"])
def test_the_one_statement_is_timed_as_a_text_match(server: Server, q: str) -> None:
    """The metrics name the page's one statement ``text_match`` (db/timing.py), not
    ``count`` or ``tiers`` for the parts it holds, broad or not, with typos or not."""
    statements = server.round_trips(parse_search([("q", q)]))
    assert ["text_match"] == [query_shape(sql) for sql in statements]


def test_a_recurring_search_sends_the_statement_prepared_the_first_time(server: Server) -> None:
    """What a page sends is worked out once per query (postgres_prepared.py, 0024): a
    search asked again sends that same statement (one round trip, or two when it drops
    a word) and returns the same result; a new snapshot or rules version starts afresh."""
    engine = server.engine
    prepared = engine.preparer.pages
    rules = engine.tiered.rules.current()
    for q in ("the matrix", "star wras", "love"):
        query = parse_search([("q", q), ("genres", "Drama")])
        first = orjson.dumps(server.run(engine.search(query)))
        found, page = prepared.get(engine.snapshot, rules, query, True)
        assert found and page is not None
        server.statements.clear()
        again = orjson.dumps(server.run(engine.search(query)))
        sent = [sql for sql in server.statements if not sql.startswith(PLAN_MODE_SWITCH)]
        assert first == again
        assert numbered(page.statement.sql) == sent[0]
        assert len(sent) <= 2
    assert prepared.get(copy.copy(engine.snapshot), rules, query, True) == (False, None)
    assert 0 == len(prepared)
