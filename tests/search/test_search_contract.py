"""The search contract of every engine, on the small hand-made catalog and the sample.

The engine fixtures are parametrized over SQLite and PostgreSQL (tests/conftest.py).
"""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from reelsearch.config import Settings
from reelsearch.errors import InvalidRequest
from reelsearch.search.backends import open_blocking_engine
from reelsearch.search.engine import BlockingSearchEngine, SearchResult
from reelsearch.search.query import HIT_FIELDS, MOVIE_FIELDS, parse_autocomplete, parse_search

BOTH = pytest.mark.parametrize("any_engine", ["small_engine", "sample_engine"], indirect=True)


def search(engine: BlockingSearchEngine, q: str = "", **params: Any) -> SearchResult:
    pairs = [("q", q)] + [(key, str(value)) for key, value in params.items()]
    return engine.search(parse_search(pairs))


def titles(result: SearchResult) -> list[str]:
    return [hit["title"] for hit in result.hits]


def all_hits(engine: BlockingSearchEngine, q: str = "", **params: Any) -> list[dict[str, Any]]:
    """Every hit of a search, following cursors (at most 10 pages of 100)."""
    hits: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(10):
        extra = {"cursor": cursor} if cursor else {}
        result = search(engine, q, limit=100, **params, **extra)
        hits += result.hits
        cursor = result.next_cursor
        if cursor is None:
            return hits
    raise AssertionError(f"more than 1,000 hits for {q!r} {params}")


def sql(settings: Settings, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
    conn = sqlite3.connect(f"file:{settings.sqlite_path}?mode=ro", uri=True)
    try:
        return conn.execute(statement, params).fetchall()
    finally:
        conn.close()


# -- relevance ---------------------------------------------------------------------------


def test_exact_title_comes_first(small_engine: BlockingSearchEngine) -> None:
    """A title equal to the query leads, even ahead of more popular prefix matches."""
    assert ["Star", "Star Wars", "Star Trek"] == titles(search(small_engine, "star"))


def test_same_title_different_years_by_popularity(small_engine: BlockingSearchEngine) -> None:
    """Two movies with the same title are both exact matches, the more voted first."""
    result = search(small_engine, "psycho")
    assert [("Psycho", 1960), ("Psycho", 1998)] == [(h["title"], h["year"]) for h in result.hits]


def test_exact_title_first_in_sample(sample_engine: BlockingSearchEngine) -> None:
    """On the real sample, the exact title leads the list."""
    assert "The Matrix" == titles(search(sample_engine, "the matrix"))[0]
    assert "Alien" == titles(search(sample_engine, "alien"))[0]
    assert "Star Wars" == titles(search(sample_engine, "star wars"))[0]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("matrix the", "The Matrix"),
        ("wars star", "Star Wars"),
        ("list schindlers", "Schindler's List"),
        ("odyssey space 2001", "2001: A Space Odyssey"),
    ],
)
def test_words_in_any_order(small_engine: BlockingSearchEngine, q: str, expected: str) -> None:
    """Word order does not matter."""
    assert expected == titles(search(small_engine, q))[0]


def test_words_in_any_order_in_sample(sample_engine: BlockingSearchEngine) -> None:
    """'matrix the' still finds The Matrix first in the sample."""
    assert "The Matrix" == titles(search(sample_engine, "matrix the"))[0]


def test_last_word_is_a_prefix(small_engine: BlockingSearchEngine) -> None:
    """'the mat' finds The Matrix: the last word may be unfinished."""
    assert ["The Matrix", "The Matrix Reloaded", "The Matrix Revisited", "Beyond the Mat"] == (
        titles(search(small_engine, "the mat"))
    )


def test_last_word_is_a_prefix_in_sample(sample_engine: BlockingSearchEngine) -> None:
    """'the mat' puts The Matrix first in the sample."""
    assert "The Matrix" == titles(search(sample_engine, "the mat"))[0]


def test_earlier_words_are_not_prefixes(small_engine: BlockingSearchEngine) -> None:
    """'mat the' needs the whole word 'mat': The Matrix is not a match."""
    assert ["Beyond the Mat"] == titles(search(small_engine, "mat the"))


def test_trailing_space_completes_the_last_word(small_engine: BlockingSearchEngine) -> None:
    """'the mat ' (space typed) matches the word 'mat' only."""
    assert ["Beyond the Mat"] == titles(search(small_engine, "the mat "))


def test_relaxed_query_keeps_finished_words_whole(small_engine: BlockingSearchEngine) -> None:
    """When an unmatched last word is dropped, the finished word before it stays whole."""
    assert ["Beyond the Mat"] == titles(search(small_engine, "mat xyzzy"))


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("psyhco", "Psycho"),
        ("alein", "Alien"),
        ("misison impossible", "Mission: Impossible"),
        ("casablacna", "Casablanca"),
        ("matirx", "The Matrix"),
        ("interstelar", "Interstellar"),
        ("toy stroy", "Toy Story"),
    ],
)
def test_one_typo_from_five_letters(
    small_engine: BlockingSearchEngine, q: str, expected: str
) -> None:
    """One typo (substitution, insertion, deletion, transposition) in a 5+ letter word."""
    assert expected == titles(search(small_engine, q))[0]


@pytest.mark.parametrize("q", ["heet", "haet", "satr", "tyo story", "trak", "wras star"])
def test_no_typo_under_five_letters(small_engine: BlockingSearchEngine, q: str) -> None:
    """Between words under 5 letters no typo is forgiven."""
    assert [] == titles(search(small_engine, q))


def test_letter_dropped_from_a_five_letter_word_is_one_typo(
    small_engine: BlockingSearchEngine,
) -> None:
    """The longer word's length counts: 'alin' (4) reaches 'alien' (5) with one typo."""
    assert ["Alien", "Alien Nation: Dark Horizon"] == titles(search(small_engine, "alin "))


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("intersteler", "Interstellar"),
        ("cosablnca", "Casablanca"),
        ("leon profesionl", "Léon: The Professional"),
        ("shcindlres list", "Schindler's List"),
    ],
)
def test_two_typos_from_nine_letters(
    small_engine: BlockingSearchEngine, q: str, expected: str
) -> None:
    """A word of 9+ letters is found with two typos."""
    assert [expected] == titles(search(small_engine, q))


@pytest.mark.parametrize("q", ["mussiin", "pskcha", "relaodde", "amilee"])
def test_two_typos_refused_under_nine_letters(small_engine: BlockingSearchEngine, q: str) -> None:
    """A word of 5-8 letters allows one typo, never two."""
    assert [] == titles(search(small_engine, q))


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("2001", ["2001: A Space Odyssey"]),
        ("2000 ", ["2000 Maniacs"]),
        ("2002 ", []),
        ("toy story 3 ", ["Toy Story 3"]),
    ],
)
def test_numbers_are_never_typo_matched(
    small_engine: BlockingSearchEngine, q: str, expected: list[str]
) -> None:
    """'2001' never finds a title that only has '2000' (and vice versa)."""
    assert expected == titles(search(small_engine, q))


def test_numbers_are_never_typo_matched_in_sample(sample_engine: BlockingSearchEngine) -> None:
    """In the sample, every hit of '2001 ' has the word 2001 in its title."""
    result = search(sample_engine, "2001 ", limit=100)
    assert result.hits
    assert [] == [t for t in titles(result) if "2001" not in t]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("amelie", ["Amélie"]),
        ("AMÉLIE", ["Amélie"]),
        ("Amèlie!", ["Amélie"]),
        ("les miserables", ["Les Misérables"]),
        ("leon the professional", ["Léon: The Professional"]),
        ("LÉON: the PROFESSIONAL", ["Léon: The Professional"]),
        ("spider man", ["Spider-Man", "Spider-Man"]),
        ("spider-man", ["Spider-Man", "Spider-Man"]),
        ("schindlers list", ["Schindler's List"]),
        ("schindler's list", ["Schindler's List"]),
        ("mission: impossible!", ["Mission: Impossible"]),
        ('say "cheese"', ['Say "Cheese"']),
    ],
)
def test_case_accents_and_punctuation_are_ignored(
    small_engine: BlockingSearchEngine, q: str, expected: list[str]
) -> None:
    """Case, accents, apostrophes and punctuation do not change what matches."""
    assert expected == titles(search(small_engine, q))


def test_spider_man_in_sample(sample_engine: BlockingSearchEngine) -> None:
    """'spider man' finds Spider-Man first in the sample."""
    assert "Spider-Man" == titles(search(sample_engine, "spider man"))[0]


def test_no_match_is_an_empty_page(small_engine: BlockingSearchEngine) -> None:
    """A query that matches nothing returns no hits, total 0 and no cursor."""
    result = search(small_engine, "qwertyuiop")
    assert ([], 0, True, None) == (
        result.hits,
        result.total,
        result.total_is_exact,
        result.next_cursor,
    )


# -- filters -----------------------------------------------------------------------------

FILTER_CASES = [
    (
        {"year_from": 1995, "year_to": 1999},
        lambda h: h["year"] is not None and 1995 <= h["year"] <= 1999,
    ),
    ({"year_from": 2001}, lambda h: h["year"] is not None and h["year"] >= 2001),
    ({"year_to": 1977}, lambda h: h["year"] is not None and h["year"] <= 1977),
    ({"genres": "Horror,Comedy"}, lambda h: bool({"Horror", "Comedy"} & set(h["genres"]))),
    (
        {"genres": "Action,Sci-Fi", "genres_mode": "all"},
        lambda h: {"Action", "Sci-Fi"} <= set(h["genres"]),
    ),
    (
        {"genres": "action,DRAMA", "genres_mode": "all"},
        lambda h: {"Action", "Drama"} <= set(h["genres"]),
    ),
    ({"min_rating": 8.5}, lambda h: h["rating"] is not None and h["rating"] >= 8.5),
    ({"min_votes": 700_000}, lambda h: h["votes"] >= 700_000),
    ({"kind": "movie"}, lambda h: h["kind"] == "movie"),
    ({"kind": "tvSeries"}, lambda h: h["kind"] == "tvSeries"),
    (
        {"year_from": 1990, "genres": "Drama", "min_rating": 8, "min_votes": 1000, "kind": "movie"},
        lambda h: (
            (h["year"] or 0) >= 1990
            and "Drama" in h["genres"]
            and (h["rating"] or 0) >= 8
            and h["votes"] >= 1000
            and h["kind"] == "movie"
        ),
    ),
]
FILTER_IDS = [
    "years",
    "year_from",
    "year_to",
    "any",
    "all",
    "all-case",
    "rating",
    "votes",
    "kind-movie",
    "kind-tv",
    "combined",
]


@pytest.mark.parametrize(("params", "holds"), FILTER_CASES, ids=FILTER_IDS)
@pytest.mark.parametrize("q", ["", "the", "s", "spider man", "psyhco"])
def test_filters_hold_for_every_hit_small(
    small_engine: BlockingSearchEngine, q: str, params: dict[str, Any], holds: Any
) -> None:
    """Each filter, alone or combined, is true of every hit, with and without text."""
    unfiltered = {h["id"]: h for h in all_hits(small_engine, q)}
    hits = all_hits(small_engine, q, **params)
    assert [] == [h for h in hits if not holds(h)]
    # Filtering keeps exactly the unfiltered matches that pass.
    assert sorted(i for i, h in unfiltered.items() if holds(h)) == sorted(h["id"] for h in hits)


SAMPLE_FILTERS = [
    ({"year_from": 1990, "year_to": 1990}, lambda h: h["year"] == 1990),
    (
        {"genres": "Animation,Documentary"},
        lambda h: bool({"Animation", "Documentary"} & set(h["genres"])),
    ),
    (
        {"genres": "Comedy,Romance", "genres_mode": "all"},
        lambda h: {"Comedy", "Romance"} <= set(h["genres"]),
    ),
    ({"min_rating": 9.5}, lambda h: h["rating"] >= 9.5),
    ({"min_votes": 50_000}, lambda h: h["votes"] >= 50_000),
    ({"kind": "movie"}, lambda h: h["kind"] == "movie"),
]


@pytest.mark.parametrize(
    ("params", "holds"),
    SAMPLE_FILTERS,
    ids=["year", "any", "all", "rating", "votes", "kind"],
)
@pytest.mark.parametrize("q", ["", "love", "star"])
def test_filters_hold_for_every_hit_sample(
    sample_engine: BlockingSearchEngine, q: str, params: dict[str, Any], holds: Any
) -> None:
    """Each filter is true of every hit of the first pages in the sample."""
    for sort in ("relevance", "-year"):
        result = search(sample_engine, q, limit=100, sort=sort, **params)
        assert [] == [h for h in result.hits if not holds(h)]


def test_year_range_is_inclusive(small_engine: BlockingSearchEngine) -> None:
    """year_from and year_to both include their own year."""
    result = search(small_engine, "", year_from=1977, year_to=1979, sort="year", limit=100)
    assert [("Star Wars", 1977), ("Spider-Man", 1977), ("Alien", 1979)] == [
        (h["title"], h["year"]) for h in result.hits
    ]


def test_browse_filters_match_sql(
    sample_engine: BlockingSearchEngine, sample_settings: Settings
) -> None:
    """Browsing a genre and a year range counts what SQL counts on the same table."""
    result = search(sample_engine, "", genres="Animation", year_from=1990, year_to=1995)
    expected = sql(
        sample_settings,
        "SELECT count(*) FROM movies WHERE year BETWEEN 1990 AND 1995 "
        "AND ',' || genres || ',' LIKE '%,Animation,%'",
    )[0][0]
    assert (expected, True) == (result.total, result.total_is_exact)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"genres": "Western"}, "genres"),
        ({"genres": "Horror,Nope"}, "genres"),
        ({"kind": "podcast"}, "kind"),
    ],
)
def test_unknown_genre_or_kind_is_refused(
    small_engine: BlockingSearchEngine, params: dict[str, Any], param: str
) -> None:
    """A genre or kind the catalog does not have is an InvalidRequest naming the parameter."""
    with pytest.raises(InvalidRequest) as info:
        search(small_engine, "star", **params)
    assert (param, 400) == (info.value.param, info.value.status_code)


# -- sorts -------------------------------------------------------------------------------

SORT_KEYS = {
    "year": lambda h: (h["year"] is None, h["year"] or 0),
    "-year": lambda h: (h["year"] is None, -(h["year"] or 0)),
    "rating": lambda h: (h["rating"] is None, h["rating"] or 0),
    "-rating": lambda h: (h["rating"] is None, -(h["rating"] or 0)),
    "votes": lambda h: h["votes"],
    "-votes": lambda h: -h["votes"],
}


@BOTH
@pytest.mark.parametrize("sort", list(SORT_KEYS))
@pytest.mark.parametrize(
    ("q", "params"),
    [("", {}), ("the", {}), ("star", {"genres": "Action"}), ("", {"year_from": 1990})],
    ids=["browse", "text", "text+genre", "browse+year"],
)
def test_sorts_order_the_hits(
    any_engine: BlockingSearchEngine, sort: str, q: str, params: dict[str, Any]
) -> None:
    """Every sort returns hits in its order (missing values last)."""
    hits = search(any_engine, q, sort=sort, limit=100, **params).hits
    assert hits
    keys = [SORT_KEYS[sort](h) for h in hits]
    assert sorted(keys) == keys


@pytest.mark.parametrize("sort", list(SORT_KEYS))
def test_sorted_text_results_have_the_relevance_match_set(
    small_engine: BlockingSearchEngine, sort: str
) -> None:
    """Sorting by a field reorders the matches of a search; it does not change them."""
    for q in ["the", "star", "s", "matrix"]:
        relevance = sorted(h["id"] for h in all_hits(small_engine, q))
        assert relevance == sorted(h["id"] for h in all_hits(small_engine, q, sort=sort)), q


@pytest.mark.parametrize("q", ["aliens", "matrx", "matrix xyzzy"])
def test_sort_does_not_change_the_match_set_with_typos_or_relaxing(
    small_engine: BlockingSearchEngine, q: str
) -> None:
    """Typo and dropped-word matches are the same set whatever the sort."""
    relevance = sorted(h["id"] for h in all_hits(small_engine, q))
    assert relevance == sorted(h["id"] for h in all_hits(small_engine, q, sort="-year"))


# -- facets ------------------------------------------------------------------------------


def expected_facets(settings: Settings, ids: list[int]) -> dict[str, dict[str, int]]:
    """Genre and decade counts of movies ``ids``, computed with SQL on the movies table."""
    marks = ",".join("?" * len(ids))
    rows = sql(settings, f"SELECT genres, year FROM movies WHERE id IN ({marks})", tuple(ids))
    genres = Counter(g for genres, _ in rows for g in genres.split(",") if g)
    decades = Counter(str(year // 10 * 10) for _, year in rows if year is not None)
    return {
        "genres": dict(sorted(genres.items(), key=lambda kv: (-kv[1], kv[0]))),
        "decade": dict(sorted(decades.items())),
    }


@pytest.mark.parametrize(
    ("q", "params"),
    [
        ("the", {}),
        ("s", {}),
        ("psyhco", {}),
        ("star", {"year_from": 1990}),
        ("", {"genres": "Sci-Fi"}),
        ("", {"genres": "Action,Drama", "genres_mode": "all"}),
        ("", {"kind": "movie", "min_rating": 8}),
        ("a", {"min_votes": 1000}),
    ],
)
def test_facets_count_the_whole_match_set_small(
    small_engine: BlockingSearchEngine, small_settings: Settings, q: str, params: dict[str, Any]
) -> None:
    """Facets count every match (not just the page), as SQL counts them."""
    ids = [h["id"] for h in all_hits(small_engine, q, **params)]
    result = search(small_engine, q, limit=1, facets="genres,decade", **params)
    assert result.facets is not None
    assert expected_facets(small_settings, ids) == result.facets
    assert list(expected_facets(small_settings, ids)["genres"]) == list(result.facets["genres"])


def test_facets_of_the_whole_catalog(
    small_engine: BlockingSearchEngine, small_settings: Settings
) -> None:
    """With no text and no filter, facets cover the whole catalog."""
    ids = [row[0] for row in sql(small_settings, "SELECT id FROM movies")]
    result = search(small_engine, "", facets="decade,genres")
    assert expected_facets(small_settings, ids) == result.facets


@pytest.mark.parametrize(
    ("q", "params"),
    [
        ("star wars", {}),
        ("matrix", {}),
        ("godfather", {}),
        ("love", {"min_votes": 5000}),
        ("", {"min_rating": 9.6}),
        ("", {"genres": "Animation", "year_from": 1995, "year_to": 1995}),
    ],
)
def test_facets_count_the_whole_match_set_sample(
    sample_engine: BlockingSearchEngine, sample_settings: Settings, q: str, params: dict[str, Any]
) -> None:
    """In the sample, facets equal SQL counts over the same matches."""
    ids = [h["id"] for h in all_hits(sample_engine, q, **params)]
    assert ids
    result = search(sample_engine, q, limit=3, facets="genres,decade", **params)
    assert expected_facets(sample_settings, ids) == result.facets


def test_facets_of_the_whole_sample(
    sample_engine: BlockingSearchEngine, sample_settings: Settings
) -> None:
    """Whole-catalog facets of the sample equal a GROUP BY over the movies table."""
    decades = dict(
        sql(
            sample_settings,
            "SELECT CAST(year / 10 * 10 AS TEXT), count(*) FROM movies "
            "WHERE year IS NOT NULL GROUP BY 1",
        )
    )
    result = search(sample_engine, "", facets="decade")
    assert result.facets is not None
    assert decades == result.facets["decade"]


def test_facets_only_when_asked(small_engine: BlockingSearchEngine) -> None:
    """No facets are computed unless requested; asking for one returns only that one."""
    assert None is search(small_engine, "star").facets
    assert ["decade"] == list(search(small_engine, "star", facets="decade").facets or {})


# -- pagination --------------------------------------------------------------------------


def pages_by_offset(
    engine: BlockingSearchEngine, q: str, size: int, **params: Any
) -> Iterator[SearchResult]:
    offset = 0
    while True:
        result = search(engine, q, limit=size, offset=offset, **params)
        yield result
        if result.next_cursor is None:
            return
        offset += size


def pages_by_cursor(
    engine: BlockingSearchEngine, q: str, size: int, **params: Any
) -> Iterator[SearchResult]:
    cursor: str | None = None
    while True:
        extra = {"cursor": cursor} if cursor else {}
        result = search(engine, q, limit=size, **params, **extra)
        yield result
        cursor = result.next_cursor
        if cursor is None:
            return


PAGINATION_CASES = [
    ("small_engine", "", {}),
    ("small_engine", "s", {}),
    ("small_engine", "the", {"sort": "-year"}),
    ("small_engine", "", {"genres": "Sci-Fi", "sort": "rating"}),
    ("small_engine", "aliens", {}),
    ("small_engine", "matrx", {}),
    ("sample_engine", "love", {}),
    ("sample_engine", "star", {"sort": "year"}),
    ("sample_engine", "", {"genres": "Animation", "year_to": 1940}),
    ("sample_engine", "the matrix", {}),
]


@pytest.mark.parametrize(
    ("any_engine", "q", "params"),
    PAGINATION_CASES,
    indirect=["any_engine"],
    ids=[f"{e.split('_')[0]}-{q or 'browse'}-{'-'.join(p)}" for e, q, p in PAGINATION_CASES],
)
@pytest.mark.parametrize("size", [1, 3, 10])
def test_offset_and_cursor_pages_concatenate_to_one_list(
    any_engine: BlockingSearchEngine, q: str, params: dict[str, Any], size: int
) -> None:
    """Pages by offset and by cursor give the same hits as one long page, no duplicates."""
    whole = search(any_engine, q, limit=100, **params)
    expected = [h["id"] for h in whole.hits]
    want = min(len(expected), 30)
    by_offset: list[int] = []
    for page in pages_by_offset(any_engine, q, size, **params):
        by_offset += [h["id"] for h in page.hits]
        if len(by_offset) >= want:
            break
    by_cursor: list[int] = []
    for page in pages_by_cursor(any_engine, q, size, **params):
        by_cursor += [h["id"] for h in page.hits]
        if len(by_cursor) >= want:
            break
    assert expected[:want] == by_offset[:want]
    assert expected[:want] == by_cursor[:want]
    assert len(set(by_cursor)) == len(by_cursor)


@pytest.mark.parametrize("q", ["aliens", "s", "the", "star", "matrx"])
def test_total_does_not_depend_on_the_page_size(small_engine: BlockingSearchEngine, q: str) -> None:
    """The same search reports the same total whatever its limit and offset."""
    totals = {
        (limit, offset): search(small_engine, q, limit=limit, offset=offset).total
        for limit in (1, 2, 10, 100)
        for offset in (0, 1)
    }
    assert {len(all_hits(small_engine, q))} == set(totals.values()), totals


def test_last_page_has_no_cursor(small_engine: BlockingSearchEngine) -> None:
    """Paging 'the' by 2 gives 3 pages; only the last has next_cursor None."""
    pages = list(pages_by_cursor(small_engine, "the", 2))
    assert [2, 2, 1] == [len(p.hits) for p in pages]
    assert [True, True, False] == [p.next_cursor is not None for p in pages]
    assert {5} == {p.total for p in pages}


def test_exactly_full_last_page_has_no_cursor(small_engine: BlockingSearchEngine) -> None:
    """When the hits end exactly at a page boundary there is no empty extra page."""
    result = search(small_engine, "star", limit=3)
    assert (3, 3, None) == (len(result.hits), result.total, result.next_cursor)


def test_cursor_of_another_search_is_refused(small_engine: BlockingSearchEngine) -> None:
    """A cursor only continues the search that issued it."""
    cursor = search(small_engine, "the", limit=1).next_cursor
    assert cursor is not None
    for other in (
        [("q", "star"), ("cursor", cursor)],
        [("q", "the"), ("sort", "year"), ("cursor", cursor)],
        [("q", "the"), ("genres", "Action"), ("cursor", cursor)],
        [("q", "the "), ("cursor", cursor)],
    ):
        with pytest.raises(InvalidRequest) as info:
            parse_search(other)
        assert "cursor" == info.value.param
    # The same search with another page size and fields may continue.
    assert 1 == parse_search([("q", "the"), ("cursor", cursor), ("limit", "5")]).offset


# An empty cursor is no cursor (tests/http/test_contract.py): not in this list.
@pytest.mark.parametrize("cursor", ["abc", "!!!!", "eyJvIjoxfQ", "eyJvIjotMSwiZiI6MH0", "e30"])
def test_forged_cursor_is_refused(cursor: str) -> None:
    """A cursor this service did not issue is an InvalidRequest on 'cursor'."""
    with pytest.raises(InvalidRequest) as info:
        parse_search([("q", "the"), ("cursor", cursor)])
    assert "cursor" == info.value.param


def test_offset_and_cursor_together_are_refused(small_engine: BlockingSearchEngine) -> None:
    """Only one way of paging per request."""
    cursor = search(small_engine, "the", limit=1).next_cursor
    with pytest.raises(InvalidRequest) as info:
        parse_search([("q", "the"), ("cursor", cursor or ""), ("offset", "1")])
    assert "cursor" == info.value.param


# -- fields, totals, autocomplete, get_movie --------------------------------------------


@pytest.mark.parametrize("fields", ["id", "title,year", "kind,id,genres", ",".join(HIT_FIELDS)])
def test_fields_selects_hit_keys(small_engine: BlockingSearchEngine, fields: str) -> None:
    """'fields' returns exactly the fields asked for, in that order."""
    for q in ("star", ""):
        for hit in search(small_engine, q, fields=fields).hits:
            assert fields.split(",") == list(hit)


def test_default_hit_shape(small_engine: BlockingSearchEngine) -> None:
    """A hit has every documented field with its value from the catalog."""
    assert {
        "id": 4,
        "title": "Amélie",
        "year": 2001,
        "rating": 8.3,
        "votes": 780_000,
        "genres": ["Comedy", "Romance"],
        "runtime_min": 122,
        "kind": "movie",
        "matched_title": None,
        "highlights": {"title": [[0, 6]]},
    } == search(small_engine, "amelie").hits[0]


@pytest.fixture(scope="module")
def capped_engine(sample_backend_settings: Settings) -> Iterator[BlockingSearchEngine]:
    """The sample with totals counted exactly only up to 100."""
    engine = open_blocking_engine(replace(sample_backend_settings, max_exact_total=100))
    yield engine
    engine.close()


def test_total_is_exact_in_a_small_catalog(small_engine: BlockingSearchEngine) -> None:
    """Below the cap, total is the exact number of matches."""
    for q, params in [("the", {}), ("", {}), ("", {"genres": "Drama"}), ("s", {"sort": "year"})]:
        result = search(small_engine, q, limit=1, **params)
        assert (len(all_hits(small_engine, q, **params)), True) == (
            result.total,
            result.total_is_exact,
        )


@pytest.mark.parametrize(
    ("q", "params"),
    [
        ("the", {}),
        ("the", {"sort": "-year"}),
        ("", {"genres": "Drama"}),
        ("love", {"min_votes": 0}),
    ],
)
def test_total_is_a_floor_above_the_cap(
    capped_engine: BlockingSearchEngine, q: str, params: dict[str, Any]
) -> None:
    """Past max_exact_total, total is the cap and total_is_exact is false."""
    result = search(capped_engine, q, **params)
    assert (100, False) == (result.total, result.total_is_exact)


def test_total_exact_at_the_cap(capped_engine: BlockingSearchEngine) -> None:
    """Whole-catalog browsing knows its exact size; small result sets stay exact."""
    assert (58_788, True) == (
        search(capped_engine, "").total,
        search(capped_engine, "").total_is_exact,
    )
    result = search(capped_engine, "star wars")
    assert (5, True) == (result.total, result.total_is_exact)


def test_autocomplete_suggests_titles(small_engine: BlockingSearchEngine) -> None:
    """Autocomplete returns id, title and year of the best matches as typed."""
    suggestions = small_engine.autocomplete(parse_autocomplete([("q", "the mat"), ("limit", "2")]))
    assert [
        {"id": 1, "title": "The Matrix", "year": 1999},
        {"id": 2, "title": "The Matrix Reloaded", "year": 2003},
    ] == suggestions


def test_autocomplete_of_nothing_is_empty(small_engine: BlockingSearchEngine) -> None:
    """No words typed, no suggestions."""
    assert [] == small_engine.autocomplete(parse_autocomplete([("q", " !? ")]))


def test_autocomplete_tolerates_a_typo(sample_engine: BlockingSearchEngine) -> None:
    """Autocomplete uses the same matching as search, typos included."""
    suggestions = sample_engine.autocomplete(parse_autocomplete([("q", "matirx")]))
    assert "The Matrix" == suggestions[0]["title"]


def test_get_movie_has_the_details(small_engine: BlockingSearchEngine) -> None:
    """get_movie returns the hit fields plus original title, alternate titles and updated_at."""
    found = small_engine.get_movie(21)
    assert found is not None
    assert ("Se7en", None, ["Seven"]) == (
        found["title"],
        found["original_title"],
        found["alt_titles"],
    )
    assert {*MOVIE_FIELDS, "original_title", "alt_titles", "updated_at"} == set(found)
    assert None is small_engine.get_movie(10_000)
