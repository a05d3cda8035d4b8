"""A broad search's preferred tiers found from the title postings
(``RankSets.tier_rows``): the rows the tiers statement reads (each tier's best titles by
rank, filters and excluded words included), so "the b", "les mo" or "with a s" send no
statement, and a part too broad for the postings still leaves them to the index."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_hit_rows import selects, traced

from conftest import settings_for
from reelsearch.search import rank_sets
from reelsearch.search.as_typed import PROBE_ROWS
from reelsearch.search.backends import open_blocking_engine
from reelsearch.search.engine import BlockingSearchEngine
from reelsearch.search.filters import build_filters
from reelsearch.search.matching import (
    TIER_PHRASE,
    TIER_PHRASE_AT_START,
    TIER_STRICT,
    TIER_WHOLE_WORDS,
)
from reelsearch.search.query import parse_search
from reelsearch.search.rank_sets import RankSets
from reelsearch.search.readers import Row
from reelsearch.search.sqlite import SqliteSearchEngine

# Broad searches with preferred tiers, as typed on the way to a title (the bench's own
# among them), with excluded words, stop words, finished last words and filters.
BROAD = [
    [("q", "the b")], [("q", "the a")], [("q", "les mo")], [("q", "with a s")],
    [("q", "la vie")], [("q", "the temp")], [("q", "by the sea")], [("q", "le r")],
    [("q", "un ame")], [("q", "white l")], [("q", "to won")], [("q", "an a")],
    [("q", "the devi")], [("q", "the last")], [("q", "night of the")], [("q", "girl in")],
    [("q", "the love")], [("q", "night night")], [("q", "-bad the b")], [("q", "de amor")],
    [("q", "the love -story")], [("q", "l'a")], [("q", "l a")], [("q", "d'a")], [("q", "day and")],
    [("q", "of the mi")], [("q", "love in th")],
    [("q", "the ma"), ("genres", "Drama")], [("q", "the b"), ("year_from", "1990")],
    [("q", "the l"), ("genres", "Comedy"), ("year_to", "1980")],
]  # fmt: skip


@pytest.fixture(scope="module")
def sample(sample_db: Path) -> Iterator[BlockingSearchEngine]:
    opened = open_blocking_engine(settings_for(sample_db, db_read_pool_size=1))
    yield opened
    opened.close()


def _both(
    engine: BlockingSearchEngine,
    catalog: Path,
    params: list[tuple[str, str]],
    need: int = 10,
    *,
    broad: bool = True,
) -> tuple[list[Row], list[Row] | None, tuple[int, ...]]:
    """The tiers statement's rows for ``params`` (read from SQLite), the same from the
    postings, and the search's preferred tier kinds; the sets must exist (and be broad:
    the searches that ask for tiers, though the rows must agree at any size)."""
    inner = engine.engine
    assert isinstance(inner, SqliteSearchEngine)
    snapshot, pages = inner.snapshot, inner.tiered.pages
    query = parse_search(params)
    match = pages.match(snapshot, inner.tiered.plan(snapshot, query))
    filters = build_filters(snapshot, query, text=True)
    sets = pages.rank_sets(snapshot, match, filters)
    assert isinstance(sets, RankSets), params
    assert not broad or len(sets.plain) > PROBE_ROWS, params
    sql, values = pages.tiers_statement(match, filters, need, from_probe=True)
    conn = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
    try:
        read = [tuple(row) for row in conn.execute(sql, values)]
    finally:
        conn.close()
    return read, sets.tier_rows(need), match.preferred_kinds


def _in_order(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda row: (row[0], row[1]))


def test_tier_rows_are_the_tiers_statements_rows(
    sample: BlockingSearchEngine, sample_db: Path
) -> None:
    """For each broad search above, at page sizes 10 and 3, the postings give exactly
    the rows the tiers statement reads: each tier's best titles, tier 0's with its
    primary title; every kind of preferred tier is among them."""
    kinds: set[int] = set()
    for params in BROAD:
        for need in (10, 3):
            read, found, of_search = _both(sample, sample_db, params, need)
            assert found is not None, params
            assert _in_order(read) == _in_order(found), (params, need)
            kinds.update(of_search)
    assert {TIER_PHRASE_AT_START, TIER_STRICT, TIER_WHOLE_WORDS} <= kinds


def test_every_word_whole_is_not_only_among_the_plain_titles(
    sample: BlockingSearchEngine, sample_db: Path
) -> None:
    """The every-word-whole tier is the words anywhere, also apart where the plain set
    holds them side by side (a quoted phrase): its titles are found among the words'
    titles, not the plain set's, and are the statement's."""
    read, found, kinds = _both(sample, sample_db, [("q", '"of the" night')], broad=False)
    assert (TIER_PHRASE_AT_START, TIER_PHRASE, TIER_WHOLE_WORDS) == kinds
    assert found is not None
    assert _in_order(read) == _in_order(found)
    whole = [rank for tier, rank, _ in found if tier == 3]
    assert 40 == len(whole)  # "of", "the" and "night" anywhere: more than the plain 63
    for params in ([("q", '"the man" who')], [("q", '"love story" again')]):
        read, found, _ = _both(sample, sample_db, params, broad=False)
        assert found is not None and _in_order(read) == _in_order(found), params


def test_tier_rows_of_titles_typed_part_way(sample: BlockingSearchEngine, sample_db: Path) -> None:
    """The first words of every 150th title of the sample, the last one cut short or
    whole: wherever the match is broad and the postings answer, they answer the tiers
    statement's rows."""
    conn = sqlite3.connect(f"file:{sample_db}?mode=ro", uri=True)
    titles = [t for (t,) in conn.execute("SELECT norm_title FROM movies ORDER BY id")][::150]
    conn.close()
    inner = sample.engine
    assert isinstance(inner, SqliteSearchEngine)
    compared, left = 0, []
    for title in titles:
        words = title.split()
        for n in range(2, min(len(words), 4) + 1):
            for typed in (" ".join(words[:n]), " ".join(words[:n])[:-1]):
                params = [("q", typed)]
                snapshot, pages = inner.snapshot, inner.tiered.pages
                match = pages.match(snapshot, inner.tiered.plan(snapshot, parse_search(params)))
                sets = pages.rank_sets(
                    snapshot, match, build_filters(snapshot, parse_search(params), text=True)
                )
                if sets is None or len(sets.plain) <= PROBE_ROWS or not match.preferred:
                    continue
                read, found, _ = _both(sample, sample_db, params)
                if found is None:
                    left.append(typed)
                else:
                    assert _in_order(read) == _in_order(found), typed
                    compared += 1
    assert (89, []) == (compared, left)  # none left to the index on the sample


def test_broad_searches_with_preferred_tiers_send_no_statement(
    sample: BlockingSearchEngine, sample_db: Path
) -> None:
    """ "the b", "les mo", "with a s"...: no statement reaches SQLite, and each answers
    what the title index answers with the postings turned off (page, total, highlights)."""
    statements = traced(sample)
    without = open_blocking_engine(settings_for(sample_db, title_postings_max_movies=0))
    try:
        for params in BROAD:
            lean = parse_search([*params, ("limit", "20"), ("fields", "id,title,year")])
            statements.clear()
            assert 20 == len(sample.search(lean).hits), params
            assert [] == selects(statements), params
            query = parse_search([*params, ("limit", "20")])
            assert without.search(query) == sample.search(query), params
    finally:
        without.close()
    first = sample.search(parse_search([("q", "the temp")])).hits[0]
    assert "The Temp" == first["title"]  # tier 0, then the phrase at the start


def test_a_phrase_tier_past_the_budget_is_the_index_s(
    sample: BlockingSearchEngine, sample_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the phrase budget at 5 titles, "the b"'s tiers are not found in memory (the
    statement reads them) and the page is the same."""
    params = [("q", "the b"), ("limit", "20")]
    before = sample.search(parse_search(params))
    monkeypatch.setattr(rank_sets, "MAX_PHRASE_CANDIDATES", 5)
    _, found, _ = _both(sample, sample_db, [("q", "the b")])
    assert None is found
    statements = traced(sample)
    assert before == sample.search(parse_search(params))
    assert 1 <= len(selects(statements))
