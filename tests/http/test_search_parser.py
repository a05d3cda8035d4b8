"""The search route's parser (http/params.py ``SearchParser``) remembers what it parsed.

A recurring query string is answered with the ``SearchQuery`` parsed the first time;
a refused one is refused every time and never remembered; a long one is parsed every
time; and what it returns equals what ``parse_search`` makes of the same bytes.
"""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import pytest

from reelsearch.errors import InvalidRequest
from reelsearch.http.params import MAX_REMEMBERED_QUERY_STRING, SearchParser, query_pairs
from reelsearch.search.query import parse_search


def test_a_recurring_query_string_gets_the_query_parsed_the_first_time() -> None:
    """The same bytes twice give the same (immutable) object: the second is a lookup."""
    parse = SearchParser(256, 32)
    first = parse(b"q=alien&limit=3")
    assert first is parse(b"q=alien&limit=3")
    assert 1 == parse._remembered.cache_info().hits


def test_the_remembered_query_equals_a_fresh_parse() -> None:
    """What the parser returns is exactly what parse_search makes of the same query string,
    filters, cursor-free paging and fields included."""
    raw = b"q=Star+Wars+ep&year_from=1977&genres=Action,sci-fi&sort=-rating&limit=7&fields=id,title"
    parse = SearchParser(256, 32)
    expected = parse_search(query_pairs(raw), max_query_chars=256, max_query_words=32)
    assert expected == parse(raw)
    assert expected == parse(raw)
    assert ("star", "wars", "ep") == parse(raw).words
    assert ("Action", "sci-fi") == parse(raw).genres


def test_a_refused_query_string_is_refused_each_time_and_not_remembered() -> None:
    """An InvalidRequest propagates on every call and leaves nothing in the memo."""
    parse = SearchParser(256, 32)
    for _ in range(2):
        with pytest.raises(InvalidRequest, match="limit must be between 1 and 100"):
            parse(b"q=alien&limit=500")
    assert 0 == parse._remembered.cache_info().currsize


def test_the_limits_of_the_app_apply_to_remembered_queries() -> None:
    """The character and word limits are the parser's own, fixed at app start."""
    parse = SearchParser(10, 2)
    assert ("alien",) == parse(b"q=alien").words
    with pytest.raises(InvalidRequest, match="3 words after normalization; the limit is 2"):
        parse(b"q=a+b+c")
    with pytest.raises(InvalidRequest, match="the limit is 10"):
        parse(b"q=abcdefghijk")


def test_a_long_query_string_is_parsed_every_time() -> None:
    """Past MAX_REMEMBERED_QUERY_STRING bytes nothing is remembered, so hostile traffic of
    long unique query strings cannot grow the memo past its entries times that size."""
    parse = SearchParser(256, 32)
    raw = b"q=alien&fields=" + b",".join([b"id"] * 200)
    assert len(raw) > MAX_REMEMBERED_QUERY_STRING
    assert ("id",) == parse(raw).fields
    assert parse(raw) is not parse(raw)
    assert 0 == parse._remembered.cache_info().currsize


def test_the_memo_is_bounded_in_entries() -> None:
    """The least recently used query string leaves once the memo is full."""
    parse = SearchParser(256, 32, size=2)
    first = parse(b"q=a")
    parse(b"q=b")
    parse(b"q=c")
    assert 2 == parse._remembered.cache_info().currsize
    assert first is not parse(b"q=a")
