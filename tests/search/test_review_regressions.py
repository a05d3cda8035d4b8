"""Regressions from the review of the engine: paging, totals, typo order, prefixes, relaxing."""

# ruff: noqa: SIM300  -- the project's asserts read `expected == actual`

from __future__ import annotations

from typing import Any

from reelsearch.search.engine import BlockingSearchEngine, SearchResult
from reelsearch.search.query import parse_search
from reelsearch.search.vocabulary import MAX_COMPLETIONS, Vocabulary


def search(engine: BlockingSearchEngine, q: str, **params: Any) -> SearchResult:
    return engine.search(parse_search([("q", q), *((k, str(v)) for k, v in params.items())]))


def test_cursor_continues_past_a_capped_total(sample_engine: BlockingSearchEngine) -> None:
    """A page under a capped (inexact) total still links to the next page."""
    result = search(sample_engine, "the", genres="Drama", offset=90, limit=10)

    assert (False, 10) == (result.total_is_exact, len(result.hits))
    assert result.next_cursor is not None


def test_total_does_not_depend_on_the_page(sample_engine: BlockingSearchEngine) -> None:
    """Deep and shallow pages of one query report the same total and exactness."""
    first = search(sample_engine, "night", genres="Drama")
    deep = search(sample_engine, "night", genres="Drama", offset=90, limit=10)

    assert (first.total, first.total_is_exact) == (deep.total, deep.total_is_exact)


def test_typo_pages_neither_overlap_nor_reorder(sample_engine: BlockingSearchEngine) -> None:
    """Pages of a typo-matched query concatenate to the one-page list, without repeats."""
    one_page = [h["id"] for h in search(sample_engine, "starb ", limit=100, offset=0).hits]
    one_page += [h["id"] for h in search(sample_engine, "starb ", limit=100, offset=100).hits]
    small = [h["id"] for h in search(sample_engine, "chrismas", limit=10).hits]
    large = [h["id"] for h in search(sample_engine, "chrismas", limit=100).hits]

    assert len(one_page) == len(set(one_page))
    assert large[:10] == small


def test_a_finished_word_stays_among_its_completions() -> None:
    """A typed word that is a word of the catalog is kept when its prefix has many longer words."""
    words = [("inter", 1)] + [(f"inter{chr(97 + i)}x", 100 + i) for i in range(MAX_COMPLETIONS + 5)]
    completions = Vocabulary(words).completions("inter")

    assert completions is not None
    assert MAX_COMPLETIONS == len(completions)
    assert "inter" == completions[0]


def test_unmatched_words_drop_however_many(sample_engine: BlockingSearchEngine) -> None:
    """Every trailing word nothing matches is dropped, not just the first three."""
    result = search(sample_engine, "matrix qqqzz wwwzz xxxzz yyyzz vvvzz")

    assert "The Matrix" in [hit["title"] for hit in result.hits]
