"""The PostgreSQL page's cheaper reads answer exactly what the algorithm's own
statements do (docs/decisions/0025).

Three ways the one statement (``search/postgres_page.py``) reads less than it did:
the start tier past the probe from the title-start index (``us``, migration 0006)
instead of GIN; a match read through GIN by its rarest slot alone, each title then
tested against the whole match (a "driver"); and no count up to the cap when the
vocabulary's counts already put the words past it. Each test below first checks
that the case really takes its path on the real sample, then that every answer
the statement gives equals the one its own statement returns on the server and
that the search finds what it finds statement by statement.
"""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import asyncpg
import orjson
import pytest
from one_statement_check import one_statement_and_direct

from reelsearch.config import Settings
from reelsearch.search.postgres import PostgresSearchEngine
from reelsearch.search.postgres_answers import COUNT, TYPO_COUNT
from reelsearch.search.postgres_estimates import gin_driver, matches_at_least
from reelsearch.search.postgres_prepared import PreparedPage
from reelsearch.search.postgres_reads import start_range
from reelsearch.search.query import parse_search
from reelsearch.search.readers import numbered

pytestmark = pytest.mark.postgres
# Title postings off: the sample's small matches would be answered from them, and these
# paths are the one statement's (which serves broad and filtered matches, and catalogs
# past the postings' cap, docs/decisions/0037).
STATEMENT_ONLY = 0

# A count cap low enough that words of the 58,788-title sample pass it twice over
# (the floor the vocabulary must show, postgres_prepared.CAP_MARGIN): "love" and the typo
# "nigth " (finished, so its typos are read: "night", 432 titles) then count from
# the vocabulary.
LOW_CAP = 100

# Searches that take each path on the sample, with the cap they need.
# Broad words whose start tier the first 1,001 matches hold too few of ("of the": few
# titles open with it among the sample's broadest match); then others broad or not.
START_TIER = ["of the", "and t"]
START_TIER_ANSWERS = [*START_TIER, "of i", "star t", "a my lo", "the ma"]
DRIVEN = ["casablanca s", "lives n"]  # a rare word and a one-letter prefix, via GIN
# One slot (the words typed apart or joined) whose split form ends in a short prefix,
# via GIN, and the driver that reads the rest of it: each alternative's other word.
ONE_SLOT_DRIVEN = {
    "spider m": "('spider' | 'spiderm':*)",
    "casa b": "('casa' | 'casab':*)",
    "star t": "('star' | 'start':*)",
}
BEYOND_CAP = ["the", "love"]  # one word, far more titles than the cap
# A prefix whose most used word has far more titles than the cap ("love", "night").
PREFIX_BEYOND_CAP = ["lov", "nigh"]
TYPOS_BEYOND_CAP = ["nigth "]  # a typo of a word far past the cap
TYPOS_COUNTED = ["nigth ", "godzila", "matrx"]  # typos counted under the default cap


class Engine:
    """An engine on the sample, on a loop of its own, with a plain connection beside it."""

    def __init__(self, settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.engine: PostgresSearchEngine = self.run(PostgresSearchEngine.open(settings))
        self.conn: asyncpg.Connection = self.run(asyncpg.connect(settings.postgres_dsn))

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def prepared(self, q: str) -> PreparedPage:
        page = self.engine.preparer.prepare_page(
            self.engine.snapshot, parse_search([("q", q)]), count=True
        )
        assert page is not None
        return page

    def close(self) -> None:
        self.run(self.conn.close())
        self.run(self.engine.close())
        self.loop.close()


@pytest.fixture(scope="module")
def engine(sample_pg_settings: Settings) -> Iterator[Engine]:
    engine = Engine(replace(sample_pg_settings, title_postings_max_movies=STATEMENT_ONLY))
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def low_cap(sample_pg_settings: Settings) -> Iterator[Engine]:
    engine = Engine(
        replace(
            sample_pg_settings, max_exact_total=LOW_CAP, title_postings_max_movies=STATEMENT_ONLY
        )
    )
    yield engine
    engine.close()


def assert_same_as_statement_by_statement(engine: Engine, params: list[tuple[str, str]]) -> None:
    """Every answer the one statement gives is its own statement's, and the search's
    result equals the one found statement by statement (every read a round trip)."""
    query = parse_search(params)
    replayed, expected, checking = engine.run(
        one_statement_and_direct(engine.engine, engine.conn, query)
    )
    assert [] == checking.differing
    assert checking.answered > 0
    assert expected == replayed


def explain_analyze(engine: Engine, q: str) -> list[dict[str, Any]]:
    """Every node of the one statement's plan, as run (EXPLAIN ANALYZE)."""
    statement = engine.prepared(q).statement
    raw = engine.run(
        engine.conn.fetchval(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + numbered(statement.sql), *statement.params
        )
    )
    return list(_nodes(orjson.loads(raw)))


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


# -- the start tier past the probe: the title-start index --------------------------


def test_the_start_tier_range_holds_every_title_opening_with_the_words(engine: Engine) -> None:
    """The range is the words typed, one space apart, up to the last code point: a
    title opening "of i..." (any completion of "i") lies in it; one-word matches
    have no start tier of their own."""
    match = engine.prepared("of i").match
    assert ("of i", "of i\U0010ffff") == start_range(match)
    assert start_range(engine.prepared("love").match) is None


@pytest.mark.parametrize("q", START_TIER)
def test_a_short_start_tier_is_read_through_the_title_start_index(engine: Engine, q: str) -> None:
    """Broad words whose start tier the probe holds too few of: the statement reads
    that tier past the probe with a range of ix_movies_title_start, which runs."""
    page = engine.prepared(q)
    assert page.statement.broad
    used = [
        node
        for node in explain_analyze(engine, q)
        if node.get("Index Name") == "ix_movies_title_start"
    ]
    assert 1 == len(used)
    assert used[0]["Actual Loops"] >= 1


@pytest.mark.parametrize("q", START_TIER_ANSWERS)
def test_the_start_tier_answers_as_the_statements_own(engine: Engine, q: str) -> None:
    """Tiers read through the title-start index are the tiers the algorithm's own
    statement finds through GIN, and so is the page."""
    assert_same_as_statement_by_statement(engine, [("q", q)])


# -- a GIN read driven by its rarest slot ----------------------------------------------


@pytest.mark.parametrize("q", DRIVEN)
def test_a_rare_word_drives_the_gin_read_of_a_short_prefix(engine: Engine, q: str) -> None:
    """A rare word beside a one-letter prefix, read through GIN: GIN reads the rare
    word's slot alone (the statement's first parameter), the whole match second."""
    page = engine.prepared(q)
    words, movies = (
        engine.engine.preparer.counts(engine.engine.snapshot),
        engine.engine.snapshot.movie_count,
    )
    driver = gin_driver(page.match, words, movies, typos=False)
    assert driver is not None and driver.startswith(f"('{q.split()[0]}' | ")
    assert [driver, page.match.plain] == list(page.statement.params[:2])


def test_common_slots_alike_read_the_whole_match(engine: Engine) -> None:
    """Two words of alike counts (or one word), no short prefix: no slot drives, GIN
    reads it all."""
    snapshot = engine.engine.snapshot
    words, movies = engine.engine.preparer.counts(snapshot), snapshot.movie_count
    for q in ("star wars", "love", "the matrix"):
        assert gin_driver(engine.prepared(q).match, words, movies, typos=False) is None


@pytest.mark.parametrize("q", sorted(ONE_SLOT_DRIVEN))
def test_one_slot_with_a_short_prefix_is_driven_by_its_other_words(engine: Engine, q: str) -> None:
    """One slot ("spider m": 'spider' & 'm':*, or the joined 'spiderman'), read through
    GIN: GIN would merge every word starting with "m"; it reads each alternative's other
    word instead (the joined one as a prefix), the whole match tested second."""
    page = engine.prepared(q)
    snapshot = engine.engine.snapshot
    words, movies = engine.engine.preparer.counts(snapshot), snapshot.movie_count
    assert 1 == len(page.match.plan.required)
    driver = gin_driver(page.match, words, movies, typos=False)
    assert ONE_SLOT_DRIVEN[q] == driver
    assert [driver, page.match.plain] == list(page.statement.params[:2])


@pytest.mark.parametrize("q", [*DRIVEN, *sorted(ONE_SLOT_DRIVEN)])
def test_a_driven_read_answers_as_the_statements_own(engine: Engine, q: str) -> None:
    """The driven read finds the titles the whole match finds through GIN."""
    assert_same_as_statement_by_statement(engine, [("q", q)])


# -- counts the vocabulary already knows --------------------------------------------


def test_the_floor_is_the_most_used_one_word_alternative(engine: Engine) -> None:
    """One required slot: its most used one-word alternative's exact title count, with
    typos its typo candidates' too ("nigth": "night"); several slots: 0."""
    snapshot = engine.engine.snapshot
    words = engine.engine.preparer.counts(snapshot)
    love = engine.prepared("love").match
    assert words.doc_count("love") == matches_at_least(love, words, typos=False)
    nigth = engine.prepared("nigth ").match
    assert 0 == matches_at_least(nigth, words, typos=False)
    assert 432 == words.doc_count("night") == matches_at_least(nigth, words, typos=True)
    assert 0 == matches_at_least(engine.prepared("star wars").match, words, typos=False)


def test_a_prefix_floor_is_its_most_used_word(engine: Engine) -> None:
    """A prefix matches every word it begins: its floor is the most used one's count
    ("nigh": "night", 432 titles), not the prefix's own as a word (fails before: 0)."""
    words = engine.engine.preparer.counts(engine.engine.snapshot)
    nigh = engine.prepared("nigh").match
    assert 0 == words.doc_count("nigh")
    assert 432 == matches_at_least(nigh, words, typos=False)


@pytest.mark.parametrize("q", [*BEYOND_CAP, *PREFIX_BEYOND_CAP])
def test_a_word_past_the_cap_probes_only_its_page(low_cap: Engine, q: str) -> None:
    """A word with more than twice the cap's titles: the probe reads the page's rows
    (the probe's 65), not the cap + 1, and the count comes from the vocabulary."""
    statement = low_cap.prepared(q).statement
    assert statement.beyond_cap
    assert 65 == statement.limit


@pytest.mark.parametrize("q", BEYOND_CAP + TYPOS_BEYOND_CAP)
def test_a_count_from_the_vocabulary_answers_as_the_statements_own(low_cap: Engine, q: str) -> None:
    """The capped total from the vocabulary is the one counting finds: cap, not exact."""
    assert_same_as_statement_by_statement(low_cap, [("q", q)])
    result = low_cap.run(low_cap.engine.search(parse_search([("q", q)])))
    assert (LOW_CAP, False) == (result.total, result.total_is_exact)


def test_a_typo_past_the_cap_is_not_counted(low_cap: Engine) -> None:
    """A typo whose candidate is a word past the cap: no part of the statement counts
    the typo matches."""
    statement = low_cap.prepared(TYPOS_BEYOND_CAP[0]).statement
    assert statement.typos_beyond_cap
    assert "fr AS MATERIALIZED" not in statement.sql
    assert f"SELECT {COUNT}, {TYPO_COUNT}," not in statement.sql


# -- the typo matches read once for the page and their count --------------------------


@pytest.mark.parametrize("q", TYPOS_COUNTED)
def test_typo_matches_are_read_once_for_the_page_and_the_count(engine: Engine, q: str) -> None:
    """A typo search whose typo matches are counted: one read of them (``fr``, their
    ranks up to the cap + 1) serves both the page's rows and the capped count, so the
    typo expression is a parameter once, where it was twice (the page, the count)."""
    page = engine.prepared(q)
    statement = page.statement
    typos = page.match.with_typos
    assert typos is not None and not statement.typos_beyond_cap
    assert "fr AS MATERIALIZED" in statement.sql
    assert f"SELECT {COUNT}, {TYPO_COUNT}," in statement.sql
    assert 1 == statement.params.count(typos)


@pytest.mark.parametrize("q", TYPOS_COUNTED)
def test_typo_matches_read_once_answer_as_the_statements_own(engine: Engine, q: str) -> None:
    """The page's typo rows and the capped typo count from the one read are the
    algorithm's own statements' answers, and the result is the statement-by-statement
    search's."""
    assert_same_as_statement_by_statement(engine, [("q", q)])


def test_with_the_default_cap_the_sample_counts_as_before(engine: Engine) -> None:
    """The sample's words fall short of twice the default cap (1,000) except the
    commonest: "love" still reads cap + 1 matches to count them."""
    assert not engine.prepared("love").statement.beyond_cap
    assert 1001 == engine.prepared("love").statement.limit
