"""Work decided once per catalog and rules version, not per request."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from reelsearch.config import Settings
from reelsearch.search.backends import open_blocking_engine
from reelsearch.search.query import parse_search
from reelsearch.search.tiered import PLAN_CACHE_SIZE


def test_plans_are_reused_per_query_text_and_bounded(small_settings: Settings) -> None:
    """The same words on the same catalog and rules get the same plan object; the LRU
    never holds more than PLAN_CACHE_SIZE plans."""
    engine = open_blocking_engine(small_settings)
    try:
        tiered = engine.engine.tiered  # type: ignore[attr-defined]
        snapshot = engine.snapshot
        first = tiered.plan(snapshot, parse_search([("q", "star wars")]))
        again = tiered.plan(snapshot, parse_search([("q", "star wars"), ("limit", "5")]))
        other = tiered.plan(snapshot, parse_search([("q", "star wars ")]))  # last word finished
        assert first is again
        assert other is not first
        for n in range(PLAN_CACHE_SIZE + 10):
            tiered.plan(snapshot, parse_search([("q", f"word{n}")]))
        assert len(tiered._plans) == PLAN_CACHE_SIZE
    finally:
        engine.close()


def test_rule_files_are_read_by_the_poll_not_by_requests(
    small_settings: Settings, tmp_path: Path
) -> None:
    """A changed synonyms file changes nothing until the engine's poll re-reads it."""
    synonyms = tmp_path / "synonyms.txt"
    synonyms.write_text("# none\n")
    engine = open_blocking_engine(replace(small_settings, synonyms_path=str(synonyms)))
    try:
        query = parse_search([("q", "zzfilm ")])
        assert engine.search(query).total == 0
        synonyms.write_text("zzfilm => casablanca\n")
        assert engine.search(query).total == 0  # requests never look at the file
        engine.refresh_if_changed()
        assert [hit["title"] for hit in engine.search(query).hits] == ["Casablanca"]
    finally:
        engine.close()


def test_statement_texts_are_built_once_per_filters_sql(small_settings: Settings) -> None:
    """The probe's, the tiers', the exists and the count statements are one string per
    filters' SQL (and number of tiers), made the first time and handed out again with
    each search's parameters."""
    from reelsearch.search.filters import NO_FILTERS, Filters
    from reelsearch.search.sql import SQLITE
    from reelsearch.search.tiered import TieredSearch

    tiered = TieredSearch(small_settings, SQLITE)
    pages, statements = tiered.pages, tiered.statements
    first = pages.rows_statement("matrix", NO_FILTERS, 65)
    again = pages.rows_statement("alien", NO_FILTERS, 11)
    assert (first[0] is again[0], first[1], again[1]) == (True, ("matrix", 65), ("alien", 11))
    year = Filters(" AND m.year >= ?", (1990,))
    filtered = pages.rows_statement("matrix", year, 65)
    assert filtered == (
        first[0].replace(" ORDER BY", " AND m.year >= ? ORDER BY"),
        ("matrix", 1990, 65),
    )
    exists = statements.exists_statement("matrix", year)
    assert exists[0] is statements.exists_statement("alien", year)[0]
    assert exists[1] == ("matrix", 1990)
    count = statements.count_up_to_statement("matrix", NO_FILTERS, 101)
    assert count[0] is statements.count_up_to_statement("alien", NO_FILTERS, 7)[0]
    assert count[1] == ("matrix", 101)
