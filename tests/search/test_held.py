"""What the engine's LRUs keep per query costs the garbage collector nothing
(search/held.py): plans, compiled matches and parsed queries are out of its view,
nothing reachable from them that the query made is left tracked, and they are still
freed by reference count when an LRU drops them."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import pytest

from reelsearch.config import Settings
from reelsearch.http.params import SearchParser
from reelsearch.search.assessment import SlotTest
from reelsearch.search.backends import open_blocking_engine
from reelsearch.search.filter_columns import ColumnFilter
from reelsearch.search.filters import Filters
from reelsearch.search.matching import TextMatch
from reelsearch.search.plan import Alternative, QueryPlan, Slot
from reelsearch.search.query import SearchQuery, parse_search

# One of each kind of plan: typos, a prefix, a synonym, an excluded word, a year, stop
# words, several alternatives for one slot.
QUERIES = ["godfater part 2", "the mat", "lotr", "matrix -reloaded", "alien 1979",
           "la story", "x men 2", "spiderman", "star wars"]  # fmt: skip
# Searches whose plans the algorithm remakes: a year no title has (the plan less its
# year), trailing words nothing matches (the first words' cuts), nothing at all.
REMADE = ["alien 1850", "matrix zzqxv wqzzx", "godfather zzqxv", "zzqxv"]
# The query's own objects, walked into; any other tracked object reached must be one
# the snapshot or the dialect owns.
OWN_TYPES = (QueryPlan, Slot, Alternative, TextMatch, SlotTest, SearchQuery, tuple, dict)


def tracked_reachable(
    root: object, outside: set[int], own: tuple[type, ...] = OWN_TYPES
) -> list[object]:
    """Tracked objects reachable from ``root`` through the query's own objects; an
    object of another kind must be in ``outside`` (by id) and is not walked."""
    found, seen, stack = [], set(), [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, type):
            continue  # each object's class: the module's, not the query's
        if not isinstance(obj, own):
            if gc.is_tracked(obj):
                assert id(obj) in outside, f"a {type(obj).__name__} reached from the plan"
            continue
        if gc.is_tracked(obj):
            found.append(obj)
        stack.extend(gc.get_referents(obj))
    return found


def test_plans_and_matches_in_the_lrus_are_untracked(sample_settings: Settings) -> None:
    """After searches of every kind, nothing the LRUs keep for them (plans, slots,
    alternatives, matches, slot tests and the tuples between them) is tracked; what
    they reach outside themselves is the snapshot's vocabulary and typo index or the
    dialect's syntax."""
    engine = open_blocking_engine(sample_settings)
    try:
        for text in QUERIES:
            assert engine.search(parse_search([("q", text)])).total > 0, text
        totals = [engine.search(parse_search([("q", text)])).total for text in REMADE]
        tiered = engine.engine.tiered  # type: ignore[attr-defined]
        snapshot = engine.snapshot
        outside = {id(snapshot.vocabulary), id(snapshot.typos), id(tiered.syntax)}
        plans = list(tiered._plans.values())
        entries = list(tiered.pages._matches.values())
        assert len(plans) >= len(QUERIES + REMADE)
        assert len(entries) >= len(QUERIES + REMADE)
        # Some matches are of plans the planner did not make (less their year, cut short).
        planned = {id(plan) for plan in plans}
        assert any(id(match.plan) not in planned for match in entries)
        assert totals[-1] == 0
        gc.collect()  # the interpreter untracks tuples and dicts of atoms at a collection
        left: list[Any] = []
        for root in [*plans, *entries]:
            left += tracked_reachable(root, outside)
        assert left == []
    finally:
        engine.close()


@pytest.mark.postgres
def test_postgres_prepared_pages_are_untracked(sample_pg_settings: Settings) -> None:
    """On PostgreSQL, the prepared first round trips kept per query (their keys, filters,
    statements, cuts and the matches those tried, with their plans) are untracked too."""
    from reelsearch.search.postgres_prepared import PageSql, PreparedPage
    from reelsearch.search.postgres_reads import Cut

    engine = open_blocking_engine(sample_pg_settings)
    try:
        for text in QUERIES:
            assert engine.search(parse_search([("q", text)])).total > 0, text
        for text in REMADE:
            engine.search(parse_search([("q", text)]))
        # A year among the words keeps the page off the title postings, and a word
        # nothing matches makes it try the first words: its cuts ride along; a broad
        # filtered match keeps the one statement too, its filters held with it.
        cut = parse_search([("q", "star wars 1977 zzqxv")])
        assert engine.search(cut).total > 0
        broad = parse_search([("q", "love"), ("genres", "Drama"), ("year_from", "1950")])
        assert engine.search(broad).total > 64
        postgres = engine.engine  # type: ignore[attr-defined]
        snapshot = engine.snapshot
        kept = postgres.preparer.pages._pages
        pages = [page for page in kept.values() if page is not None]
        assert len(pages) >= len(QUERIES) // 2
        assert any(page.cuts for page in pages)  # first-words cuts rode along somewhere
        outside = {id(snapshot.vocabulary), id(snapshot.typos), id(postgres.tiered.syntax)}
        own = (*OWN_TYPES, PreparedPage, PageSql, Cut, Filters, ColumnFilter)
        gc.collect()
        left: list[Any] = []
        for root in [*pages, *kept]:
            left += tracked_reachable(root, outside, own)
        assert [type(obj).__name__ for obj in left] == []
    finally:
        engine.close()


def test_parsed_queries_are_untracked_and_equal_to_the_parsers() -> None:
    """The route's parser keeps each query untracked, equal to what parse_search makes."""
    parser = SearchParser(256, 32)
    query = parser(b"q=star+wars&year_from=1977&genres=Sci-Fi")
    assert query is parser(b"q=star+wars&year_from=1977&genres=Sci-Fi")
    assert query == parse_search([("q", "star wars"), ("year_from", "1977"), ("genres", "Sci-Fi")])
    assert not gc.is_tracked(query)


def test_dropped_plans_and_matches_are_freed_without_a_collection(
    sample_settings: Settings,
) -> None:
    """Clearing the LRUs gives back what 2,000 plans with their matches took, with the
    collector off: untracked objects still die by reference count."""
    engine = open_blocking_engine(sample_settings)
    try:
        tiered = engine.engine.tiered  # type: ignore[attr-defined]
        snapshot = engine.snapshot
        gc.collect()
        gc.disable()
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]
            for n in range(2000):
                plan = tiered.plan(snapshot, parse_search([("q", f"mat{n} star wars")]))
                match = tiered.pages.match(snapshot, plan)
            assert (gc.is_tracked(plan), gc.is_tracked(match)) == (False, False)
            del plan, match
            filled = tracemalloc.get_traced_memory()[0]
            tiered._plans.clear()
            tiered.pages._matches.clear()
            emptied = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
            gc.enable()
        grown = filled - start
        assert grown > 2_000_000  # ~1-2 kB a plan with its match
        assert emptied - start < grown // 10
    finally:
        engine.close()
