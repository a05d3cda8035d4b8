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
