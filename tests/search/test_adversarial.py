"""Hostile searches: each one's exact answer, and a bound on the work it makes the engine do.

The cases are the ones ``bench/worst_case.py`` times (Unicode that multiplies
under normalization, ligatures, very long words, common and stop words
repeated, scripts without spaces, many quotes or minus signs). Before issue
10, 256 x U+FDFA normalized into 769 words and cost thousands of plans and
statements; now the limits apply after normalization and dropping unmatched
words is a bisection, so every case stays within a few plans and statements.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from reelsearch.config import Settings
from reelsearch.errors import InvalidRequest
from reelsearch.search.backends import open_blocking_engine
from reelsearch.search.engine import BlockingSearchEngine, SearchResult
from reelsearch.search.plan import QueryPlan
from reelsearch.search.query import SearchQuery, parse_search
from reelsearch.search.readers import Reader, Row
from reelsearch.search.snapshot import CatalogSnapshot
from reelsearch.search.tiered import TieredSearch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from worst_case import adversarial_queries  # noqa: E402

# The answer to each case on the sample: (status, error code) or (200, total).
EXPECTED: dict[str, tuple[int, str | int]] = {
    "256 x U+FDFA (769 words normalized)": (400, "too_long"),
    "8 x U+FDFA (25 words normalized)": (200, 0),
    "256 x U+FB03 ligature (one 768-letter word)": (400, "too_long"),
    "one 256-letter word": (200, 0),
    "one 256-letter word, last typed (prefix)": (200, 113),
    "85 x Hangul syllable (255 jamo, one word)": (200, 0),
    "32 common words, no title has them all": (200, 3),
    "51 x 'love' (repeated common word)": (400, "too_long"),
    "32 x 'love'": (200, 534),
    "64 stop words": (400, "too_long"),
    "32 stop words": (200, 252),
    "32 misspelt 7-letter words (typo search each)": (200, 0),
    "Thai run without spaces": (200, 0),
    "Chinese run without spaces": (200, 0),
    "64 quoted one-letter phrases": (400, "too_long"),
    "32 quoted two-word phrases": (200, 129),
    "star then 62 exclusions": (400, "too_long"),
    "star then 31 exclusions": (200, 100),
    "9-letter misspelt words x 25": (200, 42),
}
# Work bounds per search, whatever the query: log2(32 words) + 3 plans, two
# reads per plan plus the page's, and no more rows than a few pages' worth.
MAX_PLANS = 8
MAX_STATEMENTS = 16
MAX_ROWS = 200


class _Tally:
    def __init__(self) -> None:
        self.plans = self.statements = self.rows = 0


class _CountingReader:
    """A Reader that counts the statements it runs and the rows they return."""

    def __init__(self, inner: Reader, tally: _Tally) -> None:
        self.inner, self.tally = inner, tally

    @property
    def seconds(self) -> float:
        return self.inner.seconds

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        found = await self.inner.rows(sql, params)
        self.tally.statements += 1
        self.tally.rows += len(found)
        return found

    async def row(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        found = await self.inner.row(sql, params)
        self.tally.statements += 1
        self.tally.rows += found is not None
        return found


class _CountingSearch(TieredSearch):
    """The real algorithm, counting the plans it builds and what it reads."""

    tally = _Tally()

    def plan(self, snapshot: CatalogSnapshot, query: SearchQuery) -> QueryPlan:
        # Plans built, not looked up: the PostgreSQL engine asks for the page's plan
        # before the algorithm does (docs/decisions/0018), from the same LRU.
        before = len(self._plans)
        plan = super().plan(snapshot, query)
        self.tally.plans += len(self._plans) != before
        return plan

    async def search(self, db: Reader, snapshot: CatalogSnapshot, query: SearchQuery) -> Any:
        return await super().search(_CountingReader(db, self.tally), snapshot, query)


@pytest.fixture(scope="module")
def counted(sample_backend_settings: Settings) -> Iterator[tuple[BlockingSearchEngine, _Tally]]:
    engine = open_blocking_engine(sample_backend_settings)
    inner: Any = engine.engine
    counting = _CountingSearch(inner.settings, inner.tiered.dialect)
    counting.tally = _Tally()
    inner.tiered = counting
    yield engine, counting.tally
    engine.close()


@pytest.mark.parametrize("name", list(EXPECTED))
def test_hostile_query_answer_and_work_are_bounded(
    counted: tuple[BlockingSearchEngine, _Tally], name: str
) -> None:
    """Each hostile q gets its exact answer, within a few plans, statements and rows."""
    engine, tally = counted
    q = adversarial_queries()[name]
    tally.__init__()  # type: ignore[misc]
    try:
        result: SearchResult = engine.search(parse_search([("q", q)]))
        answer: tuple[int, str | int] = (200, result.total)
    except InvalidRequest as exc:
        assert exc.param == "q"
        answer = (exc.status_code, exc.code)
    assert EXPECTED[name] == answer
    assert tally.plans <= MAX_PLANS, tally.plans
    assert tally.statements <= MAX_STATEMENTS, tally.statements
    assert tally.rows <= MAX_ROWS, tally.rows


def test_every_bench_case_has_an_expected_answer() -> None:
    """The bench's adversarial set and this test's expectations name the same cases."""
    assert sorted(adversarial_queries()) == sorted(EXPECTED)


def test_dropping_unmatched_words_is_a_bisection(
    counted: tuple[BlockingSearchEngine, _Tally],
) -> None:
    """One real word then 31 that match nothing: log2(32) + 2 plans, not one per dropped word."""
    engine, tally = counted
    tally.__init__()  # type: ignore[misc]
    words = ["casablanca", *(f"zq{chr(97 + n % 26)}{chr(97 + n // 26)}x" for n in range(31))]
    result = engine.search(parse_search([("q", " ".join(words))]))
    assert result.hits[0]["title"] == "Casablanca"
    assert tally.plans <= 7, tally.plans
    assert tally.statements <= 14, tally.statements


@pytest.mark.parametrize(
    ("q", "message"),
    [
        ("\ufdfa " * 9, "q has 36 words after normalization; the limit is 32"),
        ("\ufb03" * 100, "q is 300 characters long after normalization; the limit is 256"),
        ("a " * 33, "q has 33 words after normalization; the limit is 32"),
        ("star " + "-x " * 32, "q has 33 words after normalization; the limit is 32"),
        ("x" * 257, "q is 257 characters long; the limit is 256"),
    ],
)
def test_limits_apply_after_normalization(q: str, message: str) -> None:
    """Characters and words are counted as searched, excluded words too: a 400 too_long on q."""
    with pytest.raises(InvalidRequest) as info:
        parse_search([("q", q)])
    assert (message, "too_long", "q", 400) == (
        info.value.message,
        info.value.code,
        info.value.param,
        info.value.status_code,
    )


def test_word_limit_is_a_setting() -> None:
    """max_query_words bounds the words; a query at the limit is accepted."""
    assert len(parse_search([("q", "a b c d")], max_query_words=4).words) == 4
    with pytest.raises(InvalidRequest, match="q has 5 words after normalization; the limit is 4"):
        parse_search([("q", "a b c d e")], max_query_words=4)
    assert Settings().max_query_words == 32
    assert Settings.from_env({"REELSEARCH_MAX_QUERY_WORDS": "7"}).max_query_words == 7
