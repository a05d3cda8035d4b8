"""The PostgreSQL page reads less past its probe, and answers what the algorithm's own
statements do (docs/decisions/0035).

Two ways the one statement (``search/postgres_page.py``) reads less past ``p``: the
window of ranks after it is walked only when p's density of a short phrase tier says
the window fills it (else GIN reads that tier from p's end), and a probe whose count
the vocabulary already knows reads a quarter of the cap + 1 when it walks, where it
read the cap + 1 for the count. Each test first checks the path is taken on the real
sample (under a low cap where the sample's 58,788 titles need it), then that every
answer equals its own statement's and the search its statement-by-statement result.
"""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from test_postgres_probe_paths import (
    LOW_CAP,
    STATEMENT_ONLY,
    Engine,
    _nodes,
    assert_same_as_statement_by_statement,
    explain_analyze,
)

from reelsearch.config import Settings
from reelsearch.search.postgres_prepared import PreparedPage
from reelsearch.search.postgres_reads import BEYOND_ROWS, beyond_rows

pytestmark = pytest.mark.postgres

# Under LOW_CAP the probe reads 101 matches and these phrase tiers past it are short. The
# probe holds few of a short tier's titles, so the window would not fill it: GIN reads it.
WINDOW_SKIPPED = ["of love", "in love", "man of"]
# The probe holds enough of them for the window to fill the tier: the window is walked.
WINDOW_WALKED = ["the man", "the girl"]
# Counted by the vocabulary, with preferred tiers, walked: p reads a quarter of the cap + 1
# (at least the page's probe + 1), where it read the cap + 1.
COUNTED_WALKS = {"and t": 250}
COUNTED_WALKS_LOW_CAP = {"and t": 65, "the man": 65}
# Counted too, but read through GIN: p fetches every match anyway and reads to the cap + 1.
COUNTED_GIN_LOW_CAP = ["the girl"]


@pytest.fixture(scope="module")
def engine(sample_pg_settings: Settings) -> Iterator[Engine]:
    # Postings off: they find these broad searches' tiers themselves (test_tier_rows.py).
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


def window_reads(engine: Engine, q: str) -> tuple[int, int]:
    """(titles the window past the probe walked, titles GIN returned past the probe),
    from the plan as run: the rank-index scan of ``uw`` and the rows of ``ug``."""
    ctes = {node.get("Subplan Name"): node for node in explain_analyze(engine, q)}
    walked = sum(
        node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
        for node in _nodes(ctes["CTE uw"])
        if node.get("Index Name") == "ix_movies_search_rank"
    )
    return walked, ctes["CTE ug"]["Actual Rows"]


# -- the window past the probe, walked only when it would fill a short tier (0035) --


@pytest.mark.parametrize("q", WINDOW_SKIPPED)
def test_a_tier_the_probe_rarely_holds_is_read_through_gin_without_the_window(
    low_cap: Engine, q: str
) -> None:
    """The probe's density of the short phrase tier says the next WINDOW ranks would
    not fill it: no title of the window is walked, and GIN reads the tier from the
    probe's end (fails before: the window walked 19,000+ titles first)."""
    walked, from_gin = window_reads(low_cap, q)
    assert 0 == walked
    assert from_gin > 0


@pytest.mark.parametrize("q", WINDOW_WALKED)
def test_a_tier_the_probe_often_holds_is_read_from_the_window(low_cap: Engine, q: str) -> None:
    """The probe holds enough of the short tier that the window fills it: the window
    is walked (the ranks past the probe, up to WINDOW) and GIN is not asked."""
    walked, from_gin = window_reads(low_cap, q)
    assert walked > 10_000
    assert 0 == from_gin


@pytest.mark.parametrize("q", [*WINDOW_SKIPPED, *WINDOW_WALKED])
def test_the_tiers_past_the_probe_answer_as_the_statements_own(low_cap: Engine, q: str) -> None:
    """Whether the window is walked or GIN reads from the probe's end, each tier is
    the one the algorithm's own statement finds, and so is the page."""
    assert_same_as_statement_by_statement(low_cap, [("q", q)])


# -- a counted probe with preferred tiers reads a share of the cap (0035) -------------


def walks(page: PreparedPage) -> bool:
    """Whether the page's probe walks the rank index (else it reads through GIN)."""
    return (
        "p AS MATERIALIZED (SELECT m.search_rank, m.title_tsv AS tsv FROM movies AS m WHERE "
        "ts_match_vq" in page.statement.sql
    )


@pytest.mark.parametrize(("q", "limit"), COUNTED_WALKS.items())
def test_a_counted_walking_probe_with_tiers_reads_a_share_of_the_cap(
    engine: Engine, q: str, limit: int
) -> None:
    """The vocabulary puts the words past the cap and p walks: p reads a quarter of the
    cap + 1 for the tiers (fails before: 1,001, for a count already known)."""
    page = engine.prepared(q)
    assert page.statement.beyond_cap and page.match.preferred and walks(page)
    assert limit == page.statement.limit


@pytest.mark.parametrize(("q", "limit"), COUNTED_WALKS_LOW_CAP.items())
def test_under_a_low_cap_the_share_is_at_least_the_probe(
    low_cap: Engine, q: str, limit: int
) -> None:
    """A quarter of a cap of 100 is less than the page's probe: p reads the probe + 1
    (fails before: 101)."""
    page = low_cap.prepared(q)
    assert page.statement.beyond_cap and page.match.preferred and walks(page)
    assert limit == page.statement.limit


@pytest.mark.parametrize("q", COUNTED_GIN_LOW_CAP)
def test_a_counted_probe_through_gin_still_reads_to_the_cap(low_cap: Engine, q: str) -> None:
    """GIN fetches every match whatever p's limit: p keeps the cap + 1, whose rows the
    tiers find their own in."""
    page = low_cap.prepared(q)
    assert page.statement.beyond_cap and page.match.preferred and not walks(page)
    assert LOW_CAP + 1 == page.statement.limit


@pytest.mark.parametrize("q", COUNTED_WALKS)
def test_a_shorter_counted_probe_answers_as_the_statements_own(engine: Engine, q: str) -> None:
    """The tiers past a shorter p, the page and the count: the algorithm's own."""
    assert_same_as_statement_by_statement(engine, [("q", q)])


@pytest.mark.parametrize("q", [*COUNTED_WALKS_LOW_CAP, *COUNTED_GIN_LOW_CAP])
def test_a_shorter_counted_probe_answers_as_the_statements_own_low_cap(
    low_cap: Engine, q: str
) -> None:
    """The same under a cap of 100, where the tiers read past p through the window."""
    assert_same_as_statement_by_statement(low_cap, [("q", q)])


def test_gin_past_the_window_keeps_at_least_the_unfiltered_caps_rows() -> None:
    """ug is cut at L's rows only past the default cap's L: a filter's L of 101 or a
    counted p's 250 would cut it and cost the algorithm a second statement."""
    assert [BEYOND_ROWS, BEYOND_ROWS, 2001] == [
        beyond_rows(101),
        beyond_rows(250),
        beyond_rows(2001),
    ]
