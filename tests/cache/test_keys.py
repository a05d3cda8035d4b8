"""Cache keys: many spellings of one request share a key; requests that differ do not."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from reelsearch.cache.keys import KeyContext, cache_key
from reelsearch.search.query import parse_search

CONTEXT = KeyContext(catalog_version=3, imported_at="2026-12-06T09:00:00+00:00",
                     rules_version="abc", namespace="rs")  # fmt: skip


def key_of(query_string: str, context: KeyContext = CONTEXT) -> str:
    return cache_key(context.prefix, parse_search(parse_qsl(query_string, keep_blank_values=True)))


SAME = [
    # case, whitespace, Unicode normalization, parameter order, defaults, genre spelling
    [
        "q=the+matrix&genres=Drama,Comedy",
        "q=The+Matrix&genres=comedy,drama",
        "genres=COMEDY,Drama&q=THE++MATRIX",
        "q=%20the%20%20matrix&genres=Comedy,%20Drama,drama",
        "q=the+matrix&genres=drama,comedy&limit=10&offset=0&sort=relevance&genres_mode=any",
        "q=the%09matrix&genres=drama,comedy&fields=&facets=",
    ],
    ["q=am%C3%A9lie", "q=ame%CC%81lie", "q=AM%C3%89LIE", "q=Am%C3%A9lie"],  # NFC, NFD, upper
    [
        "q=alien&fields=title,id,year",
        "q=alien&fields=id,year,title",
        "q=alien&fields=year,title,id,year",
    ],
    ["q=psycho&facets=decade,genres", "q=psycho&facets=genres,decade"],
    ["q=&year_from=1990", "year_from=1990", "year_from=1990&q="],
    ["q=star&min_rating=7", "q=star&min_rating=7.0", "q=star&min_rating=7.00"],
]

DIFFERENT = [
    "q=the+matrix",
    "q=the+matrix+",  # finished word, not a prefix
    "q=matrix+the",  # word order is part of relevance
    'q="the+matrix"',  # a phrase
    "q=the+matrix+-reloaded",
    "q=the+matrix&limit=11",
    "q=the+matrix&offset=10",
    "q=the+matrix&sort=-year",
    "q=the+matrix&year_from=1999",
    "q=the+matrix&year_to=1999",
    "q=the+matrix&genres=drama",
    "q=the+matrix&genres=drama,comedy",
    "q=the+matrix&genres=drama,comedy&genres_mode=all",
    "q=the+matrix&min_rating=7",
    "q=the+matrix&min_votes=100",
    "q=the+matrix&kind=movie",
    "q=the+matrix&kind=Movie",  # kinds are matched exactly
    "q=the+matrix&fields=title",
    "q=the+matrix&facets=decade",
    "q=the+matri",
]


@pytest.mark.parametrize("spellings", SAME, ids=[group[0] for group in SAME])
def test_spellings_of_one_request_share_a_key(spellings: list[str]) -> None:
    """Case, spacing, Unicode form, parameter order, defaults and genre order don't matter."""
    keys = {key_of(spelling) for spelling in spellings}
    assert len(keys) == 1


def test_requests_that_differ_get_different_keys() -> None:
    """Every change that can change the answer changes the key."""
    keys = [key_of(query_string) for query_string in DIFFERENT]
    assert len(set(keys)) == len(DIFFERENT)


def test_versions_are_in_the_key() -> None:
    """A new catalog (version or import), new relevance rules or namespace give a new key."""
    base = key_of("q=alien")
    variants = [
        KeyContext(4, CONTEXT.imported_at, "abc", "rs"),
        KeyContext(3, "2026-12-06T10:00:00+00:00", "abc", "rs"),
        KeyContext(3, CONTEXT.imported_at, "abd", "rs"),
        KeyContext(3, CONTEXT.imported_at, "abc", "other"),
    ]
    keys = {key_of("q=alien", context) for context in variants}
    assert len(keys) == 4 and base not in keys


def test_key_is_short_and_stable() -> None:
    """Keys are 16 URL-safe characters and the same in every process (no salted hash)."""
    key = key_of("q=alien")
    assert len(key) == 16 and key == key_of("q=alien")
    assert key.replace("-", "").replace("_", "").isalnum()


def test_last_modified_is_the_import_time() -> None:
    """The catalog's import time becomes an HTTP-date; unknown gives none."""
    assert CONTEXT.last_modified == "Sun, 06 Dec 2026 09:00:00 GMT"
    assert KeyContext(1, "", "x", "rs").last_modified == ""
